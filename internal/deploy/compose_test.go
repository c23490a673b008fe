// Package deploy checks docker-compose.yml by reading it: no Docker engine
// runs where the tests run, so what can be checked without one is checked here.
package deploy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/eventmatch/matchmaker/config"
	"github.com/eventmatch/matchmaker/internal/testenv"
)

type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Entrypoint  []string          `yaml:"entrypoint"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   any               `yaml:"depends_on"`
	} `yaml:"services"`
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml is not valid YAML: %v", err)
	}
	return c
}

func TestComposeImagesArePinned(t *testing.T) {
	for name, svc := range loadCompose(t).Services {
		if svc.Image == "" {
			if svc.Build == nil {
				t.Errorf("service %s has neither image nor build", name)
			}
			continue
		}
		tag := svc.Image[strings.LastIndex(svc.Image, ":")+1:]
		if !strings.Contains(svc.Image, ":") || tag == "latest" {
			t.Errorf("service %s: image %q is not pinned to a version", name, svc.Image)
		}
	}
}

// TestComposeSettingsExist catches a renamed or misspelt variable in the
// services built from this repository.
func TestComposeSettingsExist(t *testing.T) {
	known := map[string]bool{}
	typ := reflect.TypeOf(config.Config{})
	for i := 0; i < typ.NumField(); i++ {
		known[typ.Field(i).Tag.Get("env")] = true
	}
	c := loadCompose(t)
	for _, name := range []string{"worker", "migrate", "starter"} {
		svc, ok := c.Services[name]
		if !ok {
			t.Fatalf("service %s is missing", name)
		}
		if svc.Build == nil {
			t.Errorf("service %s must be built from the repository's Dockerfile", name)
		}
		for key := range svc.Environment {
			if !known[key] {
				t.Errorf("service %s sets %s, which the binaries do not read", name, key)
			}
		}
		if !strings.Contains(svc.Environment["DATABASE_URL"], "@postgres:5432/") {
			t.Errorf("service %s: DATABASE_URL %q does not point at the postgres service", name, svc.Environment["DATABASE_URL"])
		}
	}
	if got := c.Services["migrate"].Entrypoint; len(got) < 2 || !strings.HasSuffix(got[0], "/starter") || got[1] != "migrate" {
		t.Errorf("migrate service runs %v, want starter migrate", got)
	}
}

func TestDockerfileBuildsBothBinaries(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "./worker ./starter") {
		t.Errorf("Dockerfile does not build ./worker and ./starter")
	}
}
