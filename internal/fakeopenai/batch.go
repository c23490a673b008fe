package fakeopenai

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The Batch API: files uploaded to /v1/files (purpose "batch"), batches
// created at /v1/batches from such a file, retrieved until they complete,
// and their output and error files downloaded from /v1/files/{id}/content.
// A batch is in progress for the batch delay (SetBatchDelay, 0 by
// default) after its creation; the first retrieve after that answers its
// lines, each by the server's behaviour as if it were a chat completion
// call (with the next call number), so the same faults apply: a line
// answered with an error status goes to the error file, every other line
// to the output file. Latency and Hang do not apply to batch lines.
// SetBatchOutcome makes batches end failed (no line answered) or expired
// (only the first half of the lines answered, the rest in the error file
// with code batch_expired), as the provider's do.

type storedFile struct {
	id, name, purpose string
	data              []byte
	created           int64
}

type fakeBatch struct {
	id, inputFileID, endpoint, window string
	created                           time.Time
	total                             int
	// Set once the batch ended, with its final status.
	done                          bool
	status                        string
	outputFileID, errorFileID     string
	completed, failed, finishedAt int64
}

// SetBatchDelay makes every batch stay in progress for d after its
// creation.
func (s *Server) SetBatchDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batchDelay = d
}

// Batch outcomes SetBatchOutcome accepts.
const (
	BatchCompleted = "completed"
	BatchFailed    = "failed"
	BatchExpired   = "expired"
)

// SetBatchOutcome makes every batch end with this status from now on:
// BatchCompleted (the default), BatchFailed or BatchExpired.
func (s *Server) SetBatchOutcome(status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batchOutcome = status
}

// FailBatchRetrievals makes the next n batch retrievals answer 500.
func (s *Server) FailBatchRetrievals(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failRetrievals = n
}

// Batches is the number of batches created so far.
func (s *Server) Batches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.batches)
}

// BatchLines is the number of batch lines answered so far.
func (s *Server) BatchLines() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batchLines
}

func (s *Server) routeBatchAPI(mux *http.ServeMux) {
	for _, prefix := range []string{"/v1", ""} {
		mux.HandleFunc("POST "+prefix+"/files", s.uploadFile)
		mux.HandleFunc("GET "+prefix+"/files/{id}/content", s.fileContent)
		mux.HandleFunc("POST "+prefix+"/batches", s.createBatch)
		mux.HandleFunc("GET "+prefix+"/batches/{id}", s.retrieveBatch)
	}
}

func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseMultipartForm(64 << 20); err != nil {
		writeBody(w, http.StatusBadRequest, errorBody("Expected a multipart form: "+err.Error(), "invalid_request_error", ""))
		return
	}
	purpose := r.FormValue("purpose")
	f, hdr, err := r.FormFile("file")
	if err != nil || purpose == "" {
		writeBody(w, http.StatusBadRequest, errorBody("A file and a purpose are required.", "invalid_request_error", ""))
		return
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.nextID++
	sf := &storedFile{id: fmt.Sprintf("file-fake-%d", s.nextID), name: hdr.Filename, purpose: purpose, data: data, created: time.Now().Unix()}
	s.files[sf.id] = sf
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, fileObject(sf))
}

func fileObject(f *storedFile) map[string]any {
	return map[string]any{"id": f.id, "object": "file", "bytes": len(f.data), "created_at": f.created,
		"filename": f.name, "purpose": f.purpose, "status": "processed"}
}

func (s *Server) fileContent(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f := s.files[r.PathValue("id")]
	s.mu.Unlock()
	if f == nil {
		writeBody(w, http.StatusNotFound, errorBody("No such File object: "+r.PathValue("id"), "invalid_request_error", ""))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(f.data)
}

// batchInputLine is one line of a batch's input file.
type batchInputLine struct {
	CustomID string          `json:"custom_id"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Body     json.RawMessage `json:"body"`
}

func (s *Server) createBatch(w http.ResponseWriter, r *http.Request) {
	var in struct {
		InputFileID      string `json:"input_file_id"`
		Endpoint         string `json:"endpoint"`
		CompletionWindow string `json:"completion_window"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeBody(w, http.StatusBadRequest, errorBody("We could not parse the JSON body of your request.", "invalid_request_error", ""))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[in.InputFileID]
	switch {
	case f == nil:
		writeBody(w, http.StatusBadRequest, errorBody("No such File object: "+in.InputFileID, "invalid_request_error", ""))
		return
	case f.purpose != "batch":
		writeBody(w, http.StatusBadRequest, errorBody("The input file's purpose must be batch.", "invalid_request_error", ""))
		return
	case in.Endpoint != "/v1/chat/completions":
		writeBody(w, http.StatusBadRequest, errorBody("This fake batches /v1/chat/completions only.", "invalid_request_error", ""))
		return
	case in.CompletionWindow != "24h":
		writeBody(w, http.StatusBadRequest, errorBody("completion_window must be 24h.", "invalid_request_error", ""))
		return
	}
	lines, err := readInputLines(f.data)
	if err != nil {
		writeBody(w, http.StatusBadRequest, errorBody("Invalid input file: "+err.Error(), "invalid_request_error", ""))
		return
	}
	s.nextID++
	b := &fakeBatch{id: fmt.Sprintf("batch_fake_%d", s.nextID), inputFileID: in.InputFileID, endpoint: in.Endpoint,
		window: in.CompletionWindow, created: time.Now(), total: len(lines)}
	s.batches[b.id] = b
	writeJSON(w, http.StatusOK, b.object())
}

func readInputLines(data []byte) ([]batchInputLine, error) {
	var lines []batchInputLine
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l batchInputLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("line %d is not JSON", n)
		}
		if l.CustomID == "" || seen[l.CustomID] || l.Method != http.MethodPost || l.URL != "/v1/chat/completions" {
			return nil, fmt.Errorf("line %d: a unique custom_id, method POST and url /v1/chat/completions are required", n)
		}
		seen[l.CustomID] = true
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("no requests")
	}
	return lines, nil
}

func (s *Server) retrieveBatch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.failRetrievals > 0 {
		s.failRetrievals--
		s.mu.Unlock()
		writeBody(w, http.StatusInternalServerError, errorBody("The server had an error processing your request.", "server_error", ""))
		return
	}
	b := s.batches[r.PathValue("id")]
	if b == nil {
		s.mu.Unlock()
		writeBody(w, http.StatusNotFound, errorBody("No such Batch object: "+r.PathValue("id"), "invalid_request_error", ""))
		return
	}
	due := !b.done && time.Since(b.created) >= s.batchDelay
	s.mu.Unlock()
	if due {
		s.complete(b)
	}
	s.mu.Lock()
	obj := b.object()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, obj)
}

// complete answers the batch's lines by the server's behaviour and writes
// its output and error files. Only the first of concurrent callers does.
func (s *Server) complete(b *fakeBatch) {
	s.completing.Lock()
	defer s.completing.Unlock()
	s.mu.Lock()
	if b.done {
		s.mu.Unlock()
		return
	}
	lines, _ := readInputLines(s.files[b.inputFileID].data) // checked at creation
	outcome := s.batchOutcome
	s.mu.Unlock()

	var out, failed bytes.Buffer
	var completed, failures int64
	answered := len(lines)
	switch outcome {
	case BatchFailed:
		answered = 0
	case BatchExpired:
		answered = len(lines) / 2
	default:
		outcome = BatchCompleted
	}
	for i, l := range lines[answered:] {
		if outcome == BatchFailed {
			break // a failed batch answers nothing, not even in its error file
		}
		line, _ := json.Marshal(map[string]any{
			"id": fmt.Sprintf("batch_req_%d", answered+i+1), "custom_id": l.CustomID, "response": nil,
			"error": map[string]any{"code": "batch_expired", "message": "This request could not be executed before the completion window expired."},
		})
		failed.Write(line)
		failed.WriteByte('\n')
		failures++
	}
	if outcome == BatchFailed {
		failures = int64(len(lines))
	}
	for i, l := range lines[:answered] {
		req := Request{Path: "/v1/batches/" + b.id, Body: l.Body}
		var decoded struct {
			Model          string          `json:"model"`
			Messages       []Message       `json:"messages"`
			ResponseFormat *ResponseFormat `json:"response_format"`
		}
		_ = json.Unmarshal(l.Body, &decoded)
		req.Model, req.Messages, req.ResponseFormat = decoded.Model, decoded.Messages, decoded.ResponseFormat
		s.mu.Lock()
		s.calls++
		s.batchLines++
		call := s.calls
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()

		resp := s.behave(call, req)
		status, body := http.StatusOK, ""
		switch {
		case resp.Status != 0 && resp.Status != http.StatusOK:
			status, body = resp.Status, resp.Body
			if body == "" {
				body = errorBody(http.StatusText(resp.Status), "invalid_request_error", "")
			}
		case resp.Body != "":
			body = resp.Body
		default:
			body = completionBody(call, req, resp)
		}
		var raw json.RawMessage = []byte(body)
		if !json.Valid(raw) {
			raw, _ = json.Marshal(body) // a malformed body arrives as a string
		}
		line, _ := json.Marshal(map[string]any{
			"id": fmt.Sprintf("batch_req_%d", i+1), "custom_id": l.CustomID,
			"response": map[string]any{"status_code": status, "request_id": fmt.Sprintf("req_fake_%d", call), "body": raw},
			"error":    nil,
		})
		dst := &out
		if status != http.StatusOK {
			dst, failures = &failed, failures+1
		} else {
			completed++
		}
		dst.Write(line)
		dst.WriteByte('\n')
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	store := func(data []byte, name string) string {
		s.nextID++
		f := &storedFile{id: fmt.Sprintf("file-fake-%d", s.nextID), name: name, purpose: "batch_output", data: data, created: time.Now().Unix()}
		s.files[f.id] = f
		return f.id
	}
	if out.Len() > 0 {
		b.outputFileID = store(out.Bytes(), b.id+"_output.jsonl")
	}
	if failed.Len() > 0 {
		b.errorFileID = store(failed.Bytes(), b.id+"_error.jsonl")
	}
	b.completed, b.failed, b.finishedAt, b.done, b.status = completed, failures, time.Now().Unix(), true, outcome
}

func (b *fakeBatch) object() map[string]any {
	status := "in_progress"
	o := map[string]any{
		"id": b.id, "object": "batch", "endpoint": b.endpoint, "input_file_id": b.inputFileID,
		"completion_window": b.window, "created_at": b.created.Unix(),
		"in_progress_at": b.created.Unix(), "expires_at": b.created.Add(24 * time.Hour).Unix(),
		"output_file_id": nil, "error_file_id": nil,
		"request_counts": map[string]any{"total": b.total, "completed": b.completed, "failed": b.failed},
	}
	if b.done {
		status = b.status
		o[b.status+"_at"] = b.finishedAt
		if b.outputFileID != "" {
			o["output_file_id"] = b.outputFileID
		}
		if b.errorFileID != "" {
			o["error_file_id"] = b.errorFileID
		}
	}
	o["status"] = status
	return o
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of plain values always marshal
	}
	writeBody(w, status, string(b))
}
