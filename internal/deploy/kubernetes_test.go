package deploy

// The Kubernetes manifests of deploy/kubernetes, checked by reading them as
// compose_test.go checks docker-compose.yml: no cluster runs where the tests
// run, so what can be known without one is checked here, against the code
// (config.Config's env tags, the worker's health endpoints, the Dockerfile).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/internal/testenv"
)

const (
	k8sDir            = "deploy/kubernetes"
	k8sKustomization  = "kustomization.yaml"
	k8sWorkerName     = "matchmaker-worker" // the Deployment
	k8sWorkerPort     = 9464                // METRICS_ADDR's port in the Dockerfile's EXPOSE and the README
	k8sLivenessPath   = "/healthz"
	k8sReadinessPath  = "/readyz"
	k8sStopTimeoutVar = "WORKER_STOP_TIMEOUT"
	// k8sGraceMargin is what the grace period must leave after
	// WORKER_STOP_TIMEOUT besides the worker's releaseWait (the time it
	// gives the steps it cancelled to release their batches): time to close
	// its connections and exit before Kubernetes kills it.
	k8sGraceMargin = 5 * time.Second
)

// temporalConnectionVars are the Temporal connection settings the worker
// reads (Temporal Cloud: API key or mTLS). They are listed here as well as
// read from config.Config, so that the manifests may name them whichever
// way the code declares them.
var temporalConnectionVars = []string{
	"TEMPORAL_ADDRESS",
	"TEMPORAL_NAMESPACE",
	"TEMPORAL_API_KEY",
	"TEMPORAL_TLS",
	"TEMPORAL_TLS_CLIENT_CERT_PATH",
	"TEMPORAL_TLS_CLIENT_KEY_PATH",
	"TEMPORAL_TLS_SERVER_CA_CERT_PATH",
	"TEMPORAL_TLS_SERVER_NAME",
}

// secretVars must come from a Secret, never from a literal or a ConfigMap.
var secretVars = []string{"DATABASE_URL", "DATABASE_LISTEN_URL", "OPENAI_API_KEY", "TEMPORAL_API_KEY"}

// secretLooking matches other variable names that would hold a secret.
var secretLooking = regexp.MustCompile(`(?i)(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE)`)

type k8sMeta struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type k8sSecurityContext struct {
	RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	Privileged               *bool  `yaml:"privileged"`
	Capabilities             *struct {
		Add  []string `yaml:"add"`
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
}

type k8sKeyRef struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional *bool  `yaml:"optional"`
}

type k8sEnvVar struct {
	Name      string `yaml:"name"`
	Value     any    `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef     *k8sKeyRef `yaml:"secretKeyRef"`
		ConfigMapKeyRef  *k8sKeyRef `yaml:"configMapKeyRef"`
		FieldRef         any        `yaml:"fieldRef"`
		ResourceFieldRef any        `yaml:"resourceFieldRef"`
	} `yaml:"valueFrom"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	Exec      any `yaml:"exec"`
	TCPSocket any `yaml:"tcpSocket"`
	GRPC      any `yaml:"grpc"`
}

type k8sVolumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		Prefix       string `yaml:"prefix"`
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env            []k8sEnvVar      `yaml:"env"`
	VolumeMounts   []k8sVolumeMount `yaml:"volumeMounts"`
	LivenessProbe  *k8sProbe        `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe        `yaml:"readinessProbe"`
	StartupProbe   *k8sProbe        `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]any `yaml:"requests"`
		Limits   map[string]any `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext *k8sSecurityContext `yaml:"securityContext"`
}

type k8sPodSpec struct {
	TerminationGracePeriodSeconds *int64              `yaml:"terminationGracePeriodSeconds"`
	RestartPolicy                 string              `yaml:"restartPolicy"`
	SecurityContext               *k8sSecurityContext `yaml:"securityContext"`
	InitContainers                []k8sContainer      `yaml:"initContainers"`
	Containers                    []k8sContainer      `yaml:"containers"`
	Volumes                       []struct {
		Name   string `yaml:"name"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
			Optional   *bool  `yaml:"optional"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

// k8sObject holds the fields of the kinds deploy/kubernetes uses that the
// tests read; anything else is ignored.
type k8sObject struct {
	APIVersion string         `yaml:"apiVersion"`
	Kind       string         `yaml:"kind"`
	Metadata   k8sMeta        `yaml:"metadata"`
	Type       string         `yaml:"type"`
	Data       map[string]any `yaml:"data"`
	StringData map[string]any `yaml:"stringData"`
	Spec       struct {
		Replicas *int `yaml:"replicas"`
		Selector *struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template *struct {
			Metadata k8sMeta    `yaml:"metadata"`
			Spec     k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		MinAvailable   any `yaml:"minAvailable"`
	} `yaml:"spec"`

	file string // under deploy/kubernetes
	doc  int    // 1-based, among the file's non-empty documents
}

func (o k8sObject) String() string {
	return fmt.Sprintf("%s %s (%s, document %d)", o.Kind, o.Metadata.Name, o.file, o.doc)
}

func (o k8sObject) pod() *k8sPodSpec {
	if o.Spec.Template == nil {
		return nil
	}
	return &o.Spec.Template.Spec
}

type k8sKustomizationFile struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Resources  []string `yaml:"resources"`
	Images     []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
		Digest  string `yaml:"digest"`
	} `yaml:"images"`
}

// k8sFiles returns the YAML files of deploy/kubernetes, sorted.
func k8sFiles(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		found, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), k8sDir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range found {
			names = append(names, filepath.Base(f))
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatalf("no manifests in %s", k8sDir)
	}
	return names
}

// isExample reports whether a file is an example (secret.example.yaml),
// which kustomization.yaml must not apply.
func isExample(name string) bool {
	return strings.Contains(name, ".example.")
}

// yamlDocuments splits a multi-document YAML file, leaving out documents
// that hold nothing (a file may start with comments and ---).
func yamlDocuments(raw []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
			continue
		}
		docs = append(docs, &doc)
	}
}

// loadK8s parses every manifest of deploy/kubernetes (not the
// kustomization), examples included.
func loadK8s(t *testing.T) []k8sObject {
	t.Helper()
	var objs []k8sObject
	for _, name := range k8sFiles(t) {
		if name == k8sKustomization {
			continue
		}
		docs, err := yamlDocuments(repoFile(t, path.Join(k8sDir, name)))
		if err != nil {
			t.Fatalf("%s/%s is not valid YAML: %v", k8sDir, name, err)
		}
		if len(docs) == 0 {
			t.Errorf("%s/%s holds no manifest", k8sDir, name)
		}
		for i, doc := range docs {
			var o k8sObject
			if err := doc.Decode(&o); err != nil {
				t.Fatalf("%s/%s, document %d: %v", k8sDir, name, i+1, err)
			}
			o.file, o.doc = name, i+1
			objs = append(objs, o)
		}
	}
	return objs
}

// applied returns the objects kustomization.yaml applies (no examples).
func applied(objs []k8sObject) []k8sObject {
	var out []k8sObject
	for _, o := range objs {
		if !isExample(o.file) {
			out = append(out, o)
		}
	}
	return out
}

func loadKustomization(t *testing.T) k8sKustomizationFile {
	t.Helper()
	var k k8sKustomizationFile
	if err := yaml.Unmarshal(repoFile(t, path.Join(k8sDir, k8sKustomization)), &k); err != nil {
		t.Fatalf("%s/%s: %v", k8sDir, k8sKustomization, err)
	}
	return k
}

func findObject(t *testing.T, objs []k8sObject, kind, name string) k8sObject {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	t.Fatalf("%s has no %s named %s", k8sDir, kind, name)
	return k8sObject{}
}

// workloads returns the applied objects that run pods, with their containers.
func workloads(objs []k8sObject) []k8sObject {
	var out []k8sObject
	for _, o := range applied(objs) {
		if o.pod() != nil {
			out = append(out, o)
		}
	}
	return out
}

func allContainers(p *k8sPodSpec) []k8sContainer {
	return append(slices.Clone(p.InitContainers), p.Containers...)
}

// envSource is where a container's variable comes from.
type envSource struct {
	literal   *string    // value:
	secret    *k8sKeyRef // valueFrom.secretKeyRef, or envFrom secretRef (Key is the variable)
	configMap string     // the ConfigMap it comes from (envFrom or configMapKeyRef)
	cmValue   any        // that ConfigMap's value, when the ConfigMap is in the manifests
	other     bool       // fieldRef, resourceFieldRef
}

// effectiveEnv resolves a container's environment as the kubelet does:
// envFrom first, then env, a later entry overriding an earlier one.
func effectiveEnv(t *testing.T, objs []k8sObject, where string, c k8sContainer) map[string]envSource {
	t.Helper()
	configMaps := map[string]k8sObject{}
	for _, o := range applied(objs) {
		if o.Kind == "ConfigMap" {
			configMaps[o.Metadata.Name] = o
		}
	}
	out := map[string]envSource{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := configMaps[from.ConfigMapRef.Name]
			if !ok {
				t.Errorf("%s, container %s: envFrom ConfigMap %s is not in the manifests", where, c.Name, from.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				out[from.Prefix+k] = envSource{configMap: cm.Metadata.Name, cmValue: v}
			}
		case from.SecretRef != nil:
			// The variables are the Secret's keys: those of the example.
			for _, s := range objs {
				if s.Kind == "Secret" && s.Metadata.Name == from.SecretRef.Name {
					for _, k := range secretKeys(s) {
						out[from.Prefix+k] = envSource{secret: &k8sKeyRef{Name: s.Metadata.Name, Key: k}}
					}
				}
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			s := yamlScalar(e.Value)
			if e.Value == nil {
				s = ""
			}
			out[e.Name] = envSource{literal: &s}
		case e.ValueFrom.SecretKeyRef != nil:
			out[e.Name] = envSource{secret: e.ValueFrom.SecretKeyRef}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			src := envSource{configMap: ref.Name}
			if cm, ok := configMaps[ref.Name]; ok {
				src.cmValue = cm.Data[ref.Key]
			}
			out[e.Name] = src
		default:
			out[e.Name] = envSource{other: true}
		}
	}
	return out
}

// value returns a variable's literal value, from env or a ConfigMap.
func (s envSource) value() (string, bool) {
	switch {
	case s.literal != nil:
		return *s.literal, true
	case s.cmValue != nil:
		return yamlScalar(s.cmValue), true
	}
	return "", false
}

func secretKeys(s k8sObject) []string {
	var keys []string
	for k := range s.Data {
		keys = append(keys, k)
	}
	for k := range s.StringData {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// goRuntimeVars are variables the Go runtime itself reads that the
// manifests may set.
var goRuntimeVars = []string{"GOMEMLIMIT"}

// knownK8sVars is every variable the binaries read.
func knownK8sVars() map[string]bool {
	known := configEnvVars()
	for _, v := range slices.Concat(temporalConnectionVars, goRuntimeVars) {
		known[v] = true
	}
	return known
}

// TestKubernetesGoMemoryLimit: the worker's GOMEMLIMIT is set, and below
// its container's memory limit with room for what the Go heap does not
// count (stacks, the runtime's own, the binary), so that the garbage
// collector works harder before the kernel kills the worker rather than
// after. Raising one without the other fails here.
func TestKubernetesGoMemoryLimit(t *testing.T) {
	objs := loadK8s(t)
	d, c := workerContainer(t, objs)
	text, ok := effectiveEnv(t, objs, d.String(), c)["GOMEMLIMIT"].value()
	if !ok {
		t.Fatalf("%s sets no GOMEMLIMIT", d)
	}
	soft, err := byteQuantity(text)
	if err != nil {
		t.Fatalf("%s: GOMEMLIMIT=%q: %v", d, text, err)
	}
	limitText, _ := c.Resources.Limits["memory"].(string)
	limit, err := byteQuantity(limitText)
	if err != nil {
		t.Fatalf("%s: memory limit %q: %v", d, limitText, err)
	}
	if soft > limit*9/10 || soft < limit/2 {
		t.Errorf("%s: GOMEMLIMIT=%s is %.0f%% of the memory limit %s; want 50–90%%", d, text, 100*float64(soft)/float64(limit), limitText)
	}
}

// byteQuantity reads a size as Kubernetes (Mi, Gi) or GOMEMLIMIT (MiB,
// GiB) writes it, or plain bytes.
func byteQuantity(s string) (int64, error) {
	for _, unit := range []struct {
		suffix string
		bytes  int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}} {
		if n, ok := strings.CutSuffix(s, unit.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * unit.bytes, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func workerContainer(t *testing.T, objs []k8sObject) (k8sObject, k8sContainer) {
	t.Helper()
	d := findObject(t, objs, "Deployment", k8sWorkerName)
	if d.pod() == nil {
		t.Fatalf("%s has no pod template", d)
	}
	for _, c := range d.pod().Containers {
		if len(c.Command) == 0 || path.Base(c.Command[0]) == "worker" {
			return d, c
		}
	}
	t.Fatalf("%s runs no worker container (command /usr/local/bin/worker, or the image's default)", d)
	return d, k8sContainer{}
}

func TestKubernetesManifestsParse(t *testing.T) {
	objs := loadK8s(t)
	seen := map[string]string{}
	for _, o := range objs {
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Errorf("%s/%s, document %d: apiVersion %q, kind %q, metadata.name %q: all three are required",
				k8sDir, o.file, o.doc, o.APIVersion, o.Kind, o.Metadata.Name)
		}
		if o.Kind == "Kustomization" {
			t.Errorf("%s: a Kustomization belongs in %s only", o, k8sKustomization)
		}
		id := o.Kind + "/" + o.Metadata.Name
		if prev, dup := seen[id]; dup {
			t.Errorf("%s is defined twice: %s and %s/%d", id, prev, o.file, o.doc)
		}
		seen[id] = fmt.Sprintf("%s/%d", o.file, o.doc)
	}
	for _, kind := range []string{"Deployment", "Job", "PodDisruptionBudget", "ConfigMap", "Secret"} {
		if !slices.ContainsFunc(objs, func(o k8sObject) bool { return o.Kind == kind }) {
			t.Errorf("%s has no %s", k8sDir, kind)
		}
	}

	// A pod template's selector must match its labels, or the API server
	// refuses the Deployment.
	d := findObject(t, objs, "Deployment", k8sWorkerName)
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
		t.Fatalf("%s has no selector.matchLabels", d)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the pod template's labels %v", d, k, v, d.Spec.Template.Metadata.Labels)
		}
	}

	// ConfigMap data must be strings: the API server refuses numbers and
	// booleans (BATCH_SIZE: 100 must be written "100").
	for _, o := range objs {
		if o.Kind != "ConfigMap" && o.Kind != "Secret" {
			continue
		}
		for _, m := range []map[string]any{o.Data, o.StringData} {
			for _, k := range sortedKeys(m) {
				if _, ok := m[k].(string); !ok && m[k] != nil {
					t.Errorf("%s: %s is %T (%v); quote it, ConfigMap and Secret values are strings", o, k, m[k], m[k])
				}
			}
		}
	}
}

func TestKubernetesKustomization(t *testing.T) {
	k := loadKustomization(t)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("%s: apiVersion %q kind %q, want kustomize.config.k8s.io/v1beta1 Kustomization", k8sKustomization, k.APIVersion, k.Kind)
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		if listed[r] {
			t.Errorf("%s lists %s twice", k8sKustomization, r)
		}
		listed[r] = true
		if _, err := os.Stat(filepath.Join(testenv.RepoRoot(), k8sDir, r)); err != nil {
			t.Errorf("%s lists %s: %v", k8sKustomization, r, err)
		}
	}
	examples := 0
	for _, name := range k8sFiles(t) {
		switch {
		case name == k8sKustomization:
		case isExample(name):
			examples++
			// Applying it would replace the real Secrets with empty ones.
			if listed[name] {
				t.Errorf("%s lists %s: an apply would overwrite the real Secrets with the example's empty values", k8sKustomization, name)
			}
		case !listed[name]:
			t.Errorf("%s does not list %s", k8sKustomization, name)
		}
	}
	if examples == 0 {
		t.Errorf("%s has no Secret example (*.example.yaml)", k8sDir)
	}

	// Every container's image is one the kustomization pins, so the worker
	// and the migrate Job run the same build.
	objs := loadK8s(t)
	pinned := map[string]string{}
	for _, img := range k.Images {
		switch {
		case img.Digest != "":
		case img.NewTag == "" || img.NewTag == "latest":
			t.Errorf("%s: image %s is not pinned (newTag %q)", k8sKustomization, img.Name, img.NewTag)
		case !versionTag.MatchString(img.NewTag):
			t.Errorf("%s: image %s: newTag %q is not an exact version", k8sKustomization, img.Name, img.NewTag)
		}
		pinned[img.Name] = img.NewName + ":" + img.NewTag + img.Digest
	}
	images := map[string]bool{}
	for _, o := range workloads(objs) {
		for _, c := range allContainers(o.pod()) {
			name, tag, digest := splitImage(c.Image)
			if _, ok := pinned[name]; !ok {
				t.Errorf("%s, container %s: image %q is not set by %s's images:", o, c.Name, c.Image, k8sKustomization)
			}
			if tag != "" || digest != "" {
				t.Errorf("%s, container %s: image %q carries its own tag; let %s's images: set it", o, c.Name, c.Image, k8sKustomization)
			}
			images[c.Image] = true
		}
	}
	if len(images) != 1 {
		t.Errorf("the workloads run images %v; the worker and the migrate Job must run the same one", sortedKeys(images))
	}
}

func TestKubernetesProbes(t *testing.T) {
	objs := loadK8s(t)
	d, c := workerContainer(t, objs)
	env := effectiveEnv(t, objs, d.String(), c)

	addr, ok := env["METRICS_ADDR"].value()
	if !ok {
		t.Fatalf("%s: METRICS_ADDR is not set; its default 127.0.0.1:9464 is out of the kubelet's reach", d)
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: METRICS_ADDR=%q: %v", d, addr, err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("%s: METRICS_ADDR=%q listens on %s only; the probes come from outside the pod, bind 0.0.0.0", d, addr, host)
	}
	port, _ := strconv.Atoi(portText)
	if port != k8sWorkerPort {
		t.Errorf("%s: METRICS_ADDR port %d, want %d (the Dockerfile's EXPOSE)", d, port, k8sWorkerPort)
	}
	if !regexp.MustCompile(`(?m)^EXPOSE\s+` + strconv.Itoa(port) + `\b`).Match(repoFile(t, "Dockerfile")) {
		t.Errorf("the Dockerfile does not EXPOSE %d, METRICS_ADDR's port", port)
	}

	named := map[string]int{}
	exposed := false
	for _, p := range c.Ports {
		named[p.Name] = p.ContainerPort
		exposed = exposed || p.ContainerPort == port
	}
	if !exposed {
		t.Errorf("%s: no containerPort %d for METRICS_ADDR", d, port)
	}
	check := func(kind string, p *k8sProbe, wantPath string) {
		t.Helper()
		if p == nil {
			t.Errorf("%s: no %s", d, kind)
			return
		}
		if p.Exec != nil {
			t.Errorf("%s: %s execs a command; the image has no shell or HTTP client, use httpGet", d, kind)
		}
		if p.HTTPGet == nil {
			t.Errorf("%s: %s is not an httpGet on %s", d, kind, wantPath)
			return
		}
		if p.HTTPGet.Path != wantPath {
			t.Errorf("%s: %s asks %q, the worker serves %s", d, kind, p.HTTPGet.Path, wantPath)
		}
		got := -1
		switch v := p.HTTPGet.Port.(type) {
		case int:
			got = v
		case string:
			if n, ok := named[v]; ok {
				got = n
			} else if n, err := strconv.Atoi(v); err == nil {
				got = n
			} else {
				t.Errorf("%s: %s port %q names no containerPort", d, kind, v)
			}
		}
		if got != port {
			t.Errorf("%s: %s on port %v, METRICS_ADDR is %s", d, kind, p.HTTPGet.Port, addr)
		}
	}
	check("livenessProbe", c.LivenessProbe, k8sLivenessPath)
	check("readinessProbe", c.ReadinessProbe, k8sReadinessPath)
	if c.StartupProbe != nil {
		check("startupProbe", c.StartupProbe, k8sLivenessPath)
	}
	if p := d.Spec.Template.Metadata.Annotations["prometheus.io/port"]; p != "" && p != portText {
		t.Errorf("%s: annotation prometheus.io/port %q, METRICS_ADDR's port is %s", d, p, portText)
	}

	// The paths are the worker's: the probes are useless if the code
	// serves other ones.
	served := workerSource(t)
	for _, p := range []string{k8sLivenessPath, k8sReadinessPath} {
		if !strings.Contains(served, strconv.Quote(p)) {
			t.Errorf("no Go file of worker/ or internal/ mentions %q: the worker does not serve the probe's path", p)
		}
	}
}

// workerSource returns the non-test Go source of worker/ and internal/,
// where the health endpoints are served.
func workerSource(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, dir := range []string{"worker", "internal"} {
		err := filepath.WalkDir(filepath.Join(testenv.RepoRoot(), dir), func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			raw, err := os.ReadFile(p)
			b.Write(raw)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// defaultStopTimeout is WORKER_STOP_TIMEOUT's envDefault in config.Config.
func defaultStopTimeout(t *testing.T) string {
	t.Helper()
	typ := reflect.TypeOf(config.Config{})
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name == k8sStopTimeoutVar {
			return f.Tag.Get("envDefault")
		}
	}
	return "25s" // the documented default, until config.Config reads it
}

func TestKubernetesGracePeriod(t *testing.T) {
	objs := loadK8s(t)
	d, c := workerContainer(t, objs)
	stopText, from := defaultStopTimeout(t), "config.Config's default"
	if v, ok := effectiveEnv(t, objs, d.String(), c)[k8sStopTimeoutVar].value(); ok {
		stopText, from = v, "the manifests"
	}
	stop, err := time.ParseDuration(stopText)
	if err != nil {
		t.Fatalf("%s=%q (%s): %v", k8sStopTimeoutVar, stopText, from, err)
	}
	grace := 30 * time.Second // Kubernetes' default
	if g := d.pod().TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	margin := k8sGraceMargin + releaseWait(t)
	if grace < stop+margin {
		t.Errorf("%s: terminationGracePeriodSeconds %s must exceed %s=%s (%s) by at least %s, or Kubernetes kills the worker while its batch finishes or is released",
			d, grace, k8sStopTimeoutVar, stop, from, margin)
	}
}

var releaseWaitDecl = regexp.MustCompile(`(?m)^const releaseWait = (\d+) \* time\.Second`)

// releaseWait reads worker/main.go's releaseWait: after WORKER_STOP_TIMEOUT
// a stopping worker waits that long for the steps it cancelled to release
// their batches. Zero when the worker has no such wait.
func releaseWait(t *testing.T) time.Duration {
	t.Helper()
	m := releaseWaitDecl.FindSubmatch(repoFile(t, "worker/main.go"))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return time.Duration(n) * time.Second
}

// k8sCommentedSetting matches a setting left commented out in a ConfigMap
// ("  # BATCH_SIZE: ..."), so that the documented options are checked too.
var k8sCommentedSetting = regexp.MustCompile(`(?m)^\s*#\s*([A-Z][A-Z0-9_]*[A-Z0-9]):(\s|$)`)

// TestKubernetesSettingsExist catches a misspelt or removed variable.
func TestKubernetesSettingsExist(t *testing.T) {
	known := knownK8sVars()
	objs := loadK8s(t)
	unknown := func(where, name string) {
		t.Helper()
		if !known[name] {
			t.Errorf("%s sets %s, which neither config.Config nor the Temporal connection settings read", where, name)
		}
	}
	for _, o := range workloads(objs) {
		for _, c := range allContainers(o.pod()) {
			env := effectiveEnv(t, objs, o.String(), c)
			for _, name := range sortedKeys(env) {
				unknown(fmt.Sprintf("%s, container %s", o, c.Name), name)
			}
		}
	}
	for _, o := range objs {
		switch o.Kind {
		case "ConfigMap":
			for name := range o.Data {
				unknown(o.String(), name)
			}
		case "Secret":
			if o.Type == "" || o.Type == "Opaque" { // variables; kubernetes.io/tls holds files
				for _, name := range secretKeys(o) {
					unknown(o.String(), name)
				}
			}
		}
	}
	for _, name := range k8sFiles(t) {
		for _, m := range k8sCommentedSetting.FindAllStringSubmatch(string(repoFile(t, path.Join(k8sDir, name))), -1) {
			unknown(name+" (a commented-out setting)", m[1])
		}
	}

	// Every secretKeyRef names a key of the Secret example, so that the
	// example says what to create.
	examples := map[string]map[string]bool{}
	for _, o := range objs {
		if o.Kind == "Secret" {
			examples[o.Metadata.Name] = map[string]bool{}
			for _, k := range secretKeys(o) {
				examples[o.Metadata.Name][k] = true
			}
		}
	}
	for _, o := range workloads(objs) {
		for _, c := range allContainers(o.pod()) {
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				if !examples[ref.Name][ref.Key] {
					t.Errorf("%s reads key %s of Secret %s, which the Secret example does not have", o, ref.Key, ref.Name)
				}
			}
		}
		for _, v := range o.pod().Volumes {
			if v.Secret != nil && examples[v.Secret.SecretName] == nil {
				t.Errorf("%s mounts Secret %s, which the Secret example does not have", o, v.Secret.SecretName)
			}
		}
	}

	// TLS file paths point into a mounted volume.
	_, worker := workerContainer(t, objs)
	cm := string(repoFile(t, path.Join(k8sDir, "configmap.yaml")))
	for _, m := range regexp.MustCompile(`(?m)^\s*#?\s*(TEMPORAL_TLS_[A-Z_]*_PATH):\s*(\S+)`).FindAllStringSubmatch(cm, -1) {
		if !slices.ContainsFunc(worker.VolumeMounts, func(vm k8sVolumeMount) bool {
			return strings.HasPrefix(m[2], strings.TrimSuffix(vm.MountPath, "/")+"/")
		}) {
			t.Errorf("configmap.yaml: %s=%s is under no volume the worker mounts", m[1], m[2])
		}
	}
}

// TestKubernetesSecretsReferenced: secrets come from Secrets by reference;
// no manifest holds one, and the example holds only empty values.
func TestKubernetesSecretsReferenced(t *testing.T) {
	objs := loadK8s(t)
	isSecretVar := func(name string) bool {
		return slices.Contains(secretVars, name) || secretLooking.MatchString(name)
	}
	hasPassword := func(v string) bool {
		u, err := url.Parse(strings.TrimSpace(v))
		if err != nil || u.User == nil {
			return false
		}
		_, set := u.User.Password()
		return set
	}
	for _, o := range workloads(objs) {
		for _, c := range allContainers(o.pod()) {
			for name, src := range effectiveEnv(t, objs, o.String(), c) {
				where := fmt.Sprintf("%s, container %s: %s", o, c.Name, name)
				v, literal := src.value()
				switch {
				case isSecretVar(name) && src.secret == nil:
					t.Errorf("%s is set from a literal or a ConfigMap; take it from a Secret (secretKeyRef)", where)
				case literal && hasPassword(v):
					t.Errorf("%s holds a URL with a password; take it from a Secret", where)
				}
			}
			for _, e := range c.Env {
				if e.Name == "DATABASE_URL" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					if opt := e.ValueFrom.SecretKeyRef.Optional; opt != nil && *opt {
						t.Errorf("%s, container %s: DATABASE_URL is optional; unset, the worker would try 127.0.0.1", o, c.Name)
					}
				}
			}
		}
	}
	for _, o := range objs {
		switch o.Kind {
		case "ConfigMap":
			for _, k := range sortedKeys(o.Data) {
				if isSecretVar(k) || hasPassword(yamlScalar(o.Data[k])) {
					t.Errorf("%s holds %s, a secret: put it in a Secret", o, k)
				}
			}
		case "Secret":
			if !isExample(o.file) {
				t.Errorf("%s holds a Secret in a file kustomization.yaml applies; Secrets are made outside the repository (see the example)", o)
			}
			for _, m := range []map[string]any{o.Data, o.StringData} {
				for _, k := range sortedKeys(m) {
					if v := yamlScalar(m[k]); m[k] != nil && strings.TrimSpace(v) != "" {
						t.Errorf("%s: %s has a value; the example must hold none", o, k)
					}
				}
			}
		}
	}
}

func TestKubernetesMigrateJob(t *testing.T) {
	objs := loadK8s(t)
	var jobs []k8sObject
	for _, o := range workloads(objs) {
		if o.Kind == "Job" {
			jobs = append(jobs, o)
		}
	}
	migrates := 0
	for _, j := range jobs {
		p := j.pod()
		if p.RestartPolicy != "Never" && p.RestartPolicy != "OnFailure" {
			t.Errorf("%s: restartPolicy %q; a Job needs Never or OnFailure", j, p.RestartPolicy)
		}
		for i, c := range allContainers(p) {
			argv := append(slices.Clone(c.Command), c.Args...)
			if len(argv) >= 2 && path.Base(argv[0]) == "starter" && argv[1] == "grant-worker" {
				// Only the migrations make the tables it grants on: it must
				// run after migrate, as a container after an init container.
				if i < len(p.InitContainers) || !slices.ContainsFunc(p.InitContainers, func(ic k8sContainer) bool {
					return slices.Contains(append(slices.Clone(ic.Command), ic.Args...), "migrate")
				}) {
					t.Errorf("%s runs grant-worker without running migrate before it (an init container)", j)
				}
				if len(argv) != 3 {
					t.Errorf("%s: grant-worker takes the worker's role, got %v", j, argv[1:])
				}
			}
			if len(argv) < 2 || path.Base(argv[0]) != "starter" || argv[1] != "migrate" {
				continue
			}
			migrates++
			if argv[0] != "/usr/local/bin/starter" {
				t.Errorf("%s runs %s; the image has the starter at /usr/local/bin/starter", j, argv[0])
			}
			env := effectiveEnv(t, objs, j.String(), c)
			listen, direct := env["DATABASE_LISTEN_URL"], env["DATABASE_URL"]
			switch {
			case listen.secret != nil:
				if listen.secret.Optional != nil && *listen.secret.Optional {
					t.Errorf("%s: DATABASE_LISTEN_URL is optional; migrate would fall back to DATABASE_URL", j)
				}
			case direct.secret != nil:
				t.Logf("%s migrates over DATABASE_URL: it must be a direct connection", j)
			default:
				t.Errorf("%s: migrate needs DATABASE_LISTEN_URL (a direct connection: a transaction pooler cannot run migrations), from a Secret", j)
			}
		}
	}
	if migrates != 1 {
		t.Errorf("%d containers run `starter migrate`, want one Job's", migrates)
	}
}

func TestKubernetesPodSecurity(t *testing.T) {
	objs := loadK8s(t)
	for _, o := range workloads(objs) {
		p := o.pod()
		pod := p.SecurityContext
		if pod == nil {
			pod = &k8sSecurityContext{}
		}
		for _, c := range allContainers(p) {
			where := fmt.Sprintf("%s, container %s", o, c.Name)
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s has no securityContext", where)
				continue
			}
			nonRoot := sc.RunAsNonRoot
			if nonRoot == nil {
				nonRoot = pod.RunAsNonRoot
			}
			user := sc.RunAsUser
			if user == nil {
				user = pod.RunAsUser
			}
			if nonRoot == nil || !*nonRoot {
				t.Errorf("%s: runAsNonRoot is not true", where)
			}
			if user != nil && *user == 0 {
				t.Errorf("%s: runAsUser 0", where)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities must drop ALL and add none", where)
			}
			for _, r := range []string{"cpu", "memory"} {
				if c.Resources.Requests[r] == nil {
					t.Errorf("%s: no %s request", where, r)
				}
			}
			if c.Resources.Limits["memory"] == nil {
				t.Errorf("%s: no memory limit", where)
			}
			if len(c.Command) > 0 && !strings.HasPrefix(c.Command[0], "/usr/local/bin/") {
				t.Errorf("%s runs %s; the image's binaries are in /usr/local/bin/", where, c.Command[0])
			}
		}
	}
}

func TestKubernetesDisruptionBudget(t *testing.T) {
	objs := loadK8s(t)
	d, _ := workerContainer(t, objs)
	var budgets []k8sObject
	for _, o := range applied(objs) {
		if o.Kind != "PodDisruptionBudget" || o.Spec.Selector == nil {
			continue
		}
		matches := len(o.Spec.Selector.MatchLabels) > 0
		for k, v := range o.Spec.Selector.MatchLabels {
			matches = matches && d.Spec.Template.Metadata.Labels[k] == v
		}
		if matches {
			budgets = append(budgets, o)
		}
	}
	if len(budgets) != 1 {
		t.Fatalf("%d PodDisruptionBudgets select the worker's pods, want 1", len(budgets))
	}
	b := budgets[0]
	replicas := 1
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	if replicas < 2 {
		t.Errorf("%s: %d replica; run at least 2 so that a drain or a crash does not stop matching", d, replicas)
	}
	// A budget that allows no eviction blocks every node drain.
	switch {
	case b.Spec.MaxUnavailable != nil:
		if n, ok := b.Spec.MaxUnavailable.(int); ok && n < 1 {
			t.Errorf("%s: maxUnavailable %d blocks node drains", b, n)
		}
	case b.Spec.MinAvailable != nil:
		if n, ok := b.Spec.MinAvailable.(int); ok && n >= replicas {
			t.Errorf("%s: minAvailable %d with %d replicas blocks node drains", b, n, replicas)
		}
	default:
		t.Errorf("%s sets neither maxUnavailable nor minAvailable", b)
	}
}
