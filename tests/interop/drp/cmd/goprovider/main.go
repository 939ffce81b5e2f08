// goprovider: an incrementer provider on net/http that follows the upstream
// github.com/digitalrebar/provision/v4 plugin + plugin/mux behaviour (see
// ../../README.md for why it is not built from the upstream module).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"plugwire.test/interop/drp/wire"
)

var def = wire.PluginProvider{
	Name:          "incrementer",
	Version:       "v4.0.0-go",
	PluginVersion: 4,
	HasPublish:    true,
	AvailableActions: []wire.AvailableAction{
		{Command: "increment", Model: "machines",
			OptionalParams: []string{"incrementer/step", "incrementer/parameter"}},
		{Command: "reset_count", Model: "machines", RequiredParams: []string{"incrementer/touched"}},
		{Command: "incrstatus"},
	},
	StoreObjects: map[string]interface{}{
		"cows": map[string]interface{}{},
		"typed-cows": map[string]interface{}{
			"Spotted":  map[string]interface{}{"type": "boolean", "isrequired": true},
			"CanMilk":  map[string]interface{}{"type": "boolean"},
			"Location": map[string]interface{}{"type": "string"},
		},
	},
}

// session is what the upstream library's api.TokenSession gives a provider: the
// endpoint and token of the server. It is nil without RS_TOKEN, and the upstream
// define path uses it anyway when the provider implements Validate (v4 head).
type session struct {
	endpoint, token string
}

func tokenSession() *session {
	ep := os.Getenv("RS_ENDPOINT")
	if ep == "" {
		ep = "https://127.0.0.1:8092"
	}
	tk := os.Getenv("RS_TOKEN")
	if tk == "" {
		return nil
	}
	return &session{endpoint: ep, token: tk}
}

// info is the Validate of a provider that asks the server who it is: GET
// /api/v3/info with the bearer token.
func (s *session) info() error {
	req, err := http.NewRequest("GET", strings.TrimRight(s.endpoint, "/")+"/api/v3/info", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /api/v3/info: HTTP %d", resp.StatusCode)
	}
	return nil
}

var (
	client   *http.Client
	seq      int64
	endpoint string
	token    string
)

// ---- the plugin/mux rules -------------------------------------------------

func jsonResponse(w http.ResponseWriter, code int, obj interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(obj)
}

func nf(w http.ResponseWriter, r *http.Request) {
	jsonResponse(w, http.StatusNotFound, &wire.Error{Code: http.StatusNotFound, Type: r.Method, Key: r.URL.Path})
}

func assureDecode(w http.ResponseWriter, r *http.Request, val interface{}) bool {
	rct := r.Header.Get("Content-Type")
	if !strings.Contains(strings.ToUpper(rct), "APPLICATION/JSON") {
		e := &wire.Error{Type: r.Method, Code: http.StatusBadRequest}
		e.Errorf("Invalid content type: %s", rct)
		jsonResponse(w, e.Code, e)
		return false
	}
	if r.ContentLength == 0 || r.Body == nil {
		return true
	}
	if err := json.NewDecoder(r.Body).Decode(val); err != nil {
		e := &wire.Error{Type: r.Method, Code: http.StatusBadRequest}
		e.Messages = append(e.Messages, err.Error())
		jsonResponse(w, e.Code, e)
		return false
	}
	return true
}

func handle(mux *http.ServeMux, path string, h http.HandlerFunc) {
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" {
			nf(w, r)
			return
		}
		defer func() {
			if err := recover(); err != nil {
				res := &wire.Error{Code: 500, Type: r.Method, Key: r.URL.Path}
				res.Errorf("Panic recovered: %v", err)
				jsonResponse(w, res.Code, res)
			}
		}()
		h(w, r)
	})
}

// ---- posting back to the server ------------------------------------------

func post(path string, v interface{}) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	resp, err := client.Post("http://unix/api-server-plugin/v4"+path, "application/json", strings.NewReader(string(data)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, b)
	}
	return nil
}

func logf(level wire.Level, format string, args ...interface{}) {
	_, file, line, _ := runtime.Caller(1)
	l := &wire.Line{
		Seq: atomic.AddInt64(&seq, 1), Time: time.Now(), Service: def.Name, Level: level,
		File: file, Line: line, Message: fmt.Sprintf(format, args...), Data: []interface{}{},
	}
	if client == nil {
		fmt.Fprintf(os.Stderr, "local log: %s\n", l.Message)
		return
	}
	if err := post("/log", l); err != nil {
		fmt.Fprintf(os.Stderr, "Failed to log line! %v\n", err)
	}
}

// ---- incrementer ---------------------------------------------------------

func apiDo(method, uuid, param string, body interface{}) (interface{}, error) {
	u := fmt.Sprintf("%s/api/v3/machines/%s/params/%s", strings.TrimRight(endpoint, "/"), url.PathEscape(uuid), param)
	var rdr io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rdr = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, u, rdr)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		return nil, fmt.Errorf("%s %s: HTTP %d %s", method, param, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	var res interface{}
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, err
	}
	return res, nil
}

func pluginErr(code int, msg string) *wire.Error {
	return &wire.Error{Code: code, Model: "plugin", Key: "incrementer", Type: "plugin", Messages: []string{msg}}
}

func bump(uuid, param string, step int) (interface{}, *wire.Error) {
	cur, err := apiDo("GET", uuid, param, nil)
	if err != nil {
		return nil, pluginErr(400, err.Error())
	}
	i := int64(step)
	if f, ok := cur.(float64); ok {
		i += int64(f)
	}
	if _, err := apiDo("POST", uuid, param, i); err != nil {
		return nil, pluginErr(400, err.Error())
	}
	return i, nil
}

type machine struct {
	Uuid string
}

func machineUUID(model interface{}) (string, *wire.Error) {
	b, _ := json.Marshal(model)
	var m machine
	if err := json.Unmarshal(b, &m); err != nil {
		return "", pluginErr(409, err.Error())
	}
	if m.Uuid == "" {
		m.Uuid = "00000000-0000-0000-0000-000000000000"
	}
	return m.Uuid, nil
}

func action(ma *wire.Action) (interface{}, *wire.Error) {
	logf(2, "Action: %v", ma.Command)
	switch ma.Command {
	case "increment":
		uuid, e := machineUUID(ma.Model)
		if e != nil {
			return nil, e
		}
		param, ok := ma.Params["incrementer/parameter"].(string)
		if !ok {
			param = "incrementer/default"
		}
		step := 1
		if f, ok := ma.Params["incrementer/step"].(float64); ok {
			step = int(f)
		}
		val, err := bump(uuid, param, step)
		if err == nil {
			_, err = bump(uuid, "incrementer/touched", 1)
		}
		return val, err
	case "reset_count":
		uuid, e := machineUUID(ma.Model)
		if e != nil {
			return nil, e
		}
		if _, err := apiDo("DELETE", uuid, "incrementer/touched", nil); err != nil {
			return "Success", pluginErr(400, err.Error())
		}
		return "Success", nil
	case "incrstatus":
		return "Running", nil
	}
	return nil, &wire.Error{Code: 404, Model: "plugin", Key: "incrementer", Type: "plugin",
		Messages: []string{fmt.Sprintf("Unknown command: %s\n", ma.Command)}}
}

// ---- handlers ------------------------------------------------------------

func configHandler(w http.ResponseWriter, r *http.Request) {
	var params map[string]interface{}
	if !assureDecode(w, r, &params) {
		return
	}
	endpoint = os.Getenv("RS_ENDPOINT")
	token = os.Getenv("RS_TOKEN")
	if token == "" {
		e := &wire.Error{Code: 400, Model: "plugin", Key: "unknown", Type: "plugin", Messages: []string{}}
		e.Errorf("Must have a token specified")
		jsonResponse(w, e.Code, e)
		return
	}
	logf(2, "Received Config request: %v", params)
	jsonResponse(w, http.StatusOK, wire.Error{Code: http.StatusOK})
}

func actionHandler(w http.ResponseWriter, r *http.Request) {
	var a wire.Action
	if !assureDecode(w, r, &a) {
		return
	}
	if ret, err := action(&a); err != nil {
		jsonResponse(w, err.Code, err)
	} else {
		jsonResponse(w, http.StatusOK, ret)
	}
}

func publishHandler(w http.ResponseWriter, r *http.Request) {
	var e wire.Event
	if !assureDecode(w, r, &e) {
		return
	}
	logf(1, "Plugin received: %v", e.Type)
	jsonResponse(w, http.StatusOK, wire.Error{Code: http.StatusOK})
}

func stopHandler(w http.ResponseWriter, r *http.Request) {
	jsonResponse(w, http.StatusOK, wire.Error{Code: http.StatusOK})
	logf(2, "STOPPING\n")
	os.Exit(0)
}

func listen(toPath, fromPath string) error {
	client = &http.Client{Transport: &http.Transport{
		DialContext: func(_ context.Context, _, _ string) (net.Conn, error) { return net.Dial("unix", fromPath) },
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("/", nf)
	handle(mux, "/api-plugin/v4/config", configHandler)
	handle(mux, "/api-plugin/v4/stop", stopHandler)
	if def.HasPublish {
		handle(mux, "/api-plugin/v4/publish", publishHandler)
	}
	handle(mux, "/api-plugin/v4/action", actionHandler)
	os.Remove(toPath)
	sock, err := net.Listen("unix", toPath)
	if err != nil {
		return err
	}
	defer sock.Close()
	go fmt.Printf("READY!\n")
	return http.Serve(sock, mux)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: goprovider define|unpack DIR|listen TO FROM|version")
		os.Exit(1)
	}
	// GOPROVIDER_NO_PUBLISH=1: a provider without Publish (HasPublish false, no
	// /publish route: 404 as upstream). GOPROVIDER_VALIDATE=1: a provider that
	// implements Validate, run at define with the API session.
	if os.Getenv("GOPROVIDER_NO_PUBLISH") == "1" {
		def.HasPublish = false
	}
	switch os.Args[1] {
	case "define":
		if os.Getenv("GOPROVIDER_VALIDATE") == "1" {
			s := tokenSession()
			if err := s.info(); err != nil { // s is nil without RS_TOKEN: SIGSEGV, exit 2
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		buf, _ := json.MarshalIndent(def, "", "  ")
		fmt.Println(string(buf))
	case "version":
		fmt.Printf("Version: %v\n", def.Version)
	case "unpack":
		if len(os.Args) != 3 || os.Args[2] == "" {
			fmt.Fprintln(os.Stderr, "Not a valid location")
			os.Exit(1)
		}
		os.MkdirAll(os.Args[2], 0755)
		if err := os.WriteFile(filepath.Join(os.Args[2], "testFile"), []byte("ImaFile"), 0644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "listen":
		if len(os.Args) != 4 {
			fmt.Printf("Failed\n")
			os.Exit(1)
		}
		if err := listen(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	default:
		os.Exit(1)
	}
}
