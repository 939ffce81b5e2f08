// Package wire declares the dr-provision plugin wire types with the upstream
// field names and Go types (models has no json tags: names are the Go names).
package wire

import (
	"fmt"
	"strings"
	"time"
)

type AvailableAction struct {
	Provider       string
	Model          string
	Command        string
	RequiredParams []string
	OptionalParams []string
}

type PluginProvider struct {
	Meta             map[string]string
	Name             string
	Version          string
	PluginVersion    int
	AutoStart        bool
	HasPublish       bool
	AvailableActions []AvailableAction
	RequiredParams   []string
	OptionalParams   []string
	StoreObjects     map[string]interface{}
	Documentation    string
	Content          string
}

type Action struct {
	Model      interface{}
	Plugin     string
	Command    string
	CommandSet string
	Params     map[string]interface{}
}

type Event struct {
	Time      time.Time
	Type      string
	Action    string
	Key       string
	Principal string
	Object    interface{}
	Original  interface{}
}

type Error struct {
	Model    string
	Key      string
	Type     string
	Messages []string
	Code     int
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s/%s: %v", e.Type, e.Model, e.Key, e.Messages)
}

func (e *Error) Errorf(s string, args ...interface{}) {
	e.Messages = append(e.Messages, fmt.Sprintf(s, args...))
}

// Level is logger.Level: an int32 marshalled as its name.
type Level int32

var levelNames = []string{"trace", "debug", "info", "warn", "error", "fatal", "panic", "audit"}

func (l *Level) MarshalText() ([]byte, error) {
	if int(*l) < 0 || int(*l) >= len(levelNames) {
		return []byte("unknown"), nil
	}
	return []byte(levelNames[*l]), nil
}

func (l *Level) UnmarshalText(t []byte) error {
	s := strings.ToLower(strings.TrimSpace(string(t)))
	if s == "err" {
		s = "error"
	}
	for i, n := range levelNames {
		if n == s {
			*l = Level(i)
			return nil
		}
	}
	return fmt.Errorf("Invalid level: %s", s)
}

type Line struct {
	Group         int64
	Seq           int64
	Time          time.Time
	Service       string
	Principal     string
	Level         Level
	File          string
	Line          int
	Message       string
	Data          []interface{}
	IgnorePublish bool
}
