package main

import (
	"encoding/json"
	"errors"
	"io"
)

// outputFormat is --output: text for people, json for scripts.
type outputFormat string

const (
	outputText outputFormat = "text"
	outputJSON outputFormat = "json"
)

func (f *outputFormat) String() string { return string(*f) }
func (f *outputFormat) Type() string   { return "text|json" }

func (f *outputFormat) Set(s string) error {
	switch outputFormat(s) {
	case outputText, outputJSON:
		*f = outputFormat(s)
		return nil
	}
	return errors.New("want text or json")
}

// result is what a command prints on stdout: as text by writeText, or as
// one JSON document of its exported fields.
type result interface {
	writeText(w io.Writer) error
}

// print writes r to stdout in format f.
func (a *app) print(f outputFormat, r result) error {
	if f == outputJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.writeText(a.stdout)
}
