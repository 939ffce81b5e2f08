// defaultvalidator: upstream's default validator (github.com/containerd/nri
// plugins/default-validator) run as an external NRI plugin on upstream's pkg/stub.
//
// The validation code is upstream's, wired the way upstream wires it: the plugin
// asks plugins/default-validator/builtin.GetDefaultValidator for the builtin
// plugin (which honours "enable" and names the plugin 00-default-validator) and
// hands its ValidateContainerAdjustment handler to pkg/stub, whose
// ValidateContainerAdjustment turns a returned error into a rejection exactly as
// the builtin plugin does. Only the transport differs from the builtin: the
// runtime reaches it over the NRI socket (or fd 3 when pre-installed).
//
// Configuration is upstream's DefaultValidatorConfig in YAML (its yaml tags): the
// runtime's Configure config (a pre-installed plugin's NN-name.conf) or, when that
// is empty (external plugins get none), the file named by -config.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	validator "github.com/containerd/nri/plugins/default-validator/builtin"
	yaml "go.yaml.in/yaml/v3"
)

var (
	socketPath = flag.String("socket", "", "runtime socket (external plugin)")
	pluginName = flag.String("name", "", "plugin name (default: upstream's builtin name)")
	pluginIdx  = flag.String("idx", "", "plugin index (default: upstream's builtin index)")
	configFile = flag.String("config", "", "YAML DefaultValidatorConfig used when the runtime sends none")
)

type plugin struct {
	validate func(context.Context, *api.ValidateContainerAdjustmentRequest) error
}

func (p *plugin) Configure(_ context.Context, config, runtime, version string) (stub.EventMask, error) {
	data := []byte(config)
	if len(data) == 0 && *configFile != "" {
		var err error
		if data, err = os.ReadFile(*configFile); err != nil {
			return 0, fmt.Errorf("failed to read default validator configuration: %w", err)
		}
	}
	cfg := &validator.DefaultValidatorConfig{}
	if err := yaml.Unmarshal(data, cfg); err != nil {
		return 0, fmt.Errorf("invalid default validator configuration: %w", err)
	}
	b := validator.GetDefaultValidator(cfg)
	if b == nil {
		return 0, fmt.Errorf("default validator is disabled by its configuration")
	}
	p.validate = b.Handlers.ValidateContainerAdjustment
	fmt.Fprintf(os.Stderr, "[INFO] default validator configured by %s/%s: %+v\n", runtime, version, *cfg)
	return 0, nil
}

func (p *plugin) ValidateContainerAdjustment(ctx context.Context, req *api.ValidateContainerAdjustmentRequest) error {
	if p.validate == nil {
		return fmt.Errorf("default validator is not configured")
	}
	return p.validate(ctx, req)
}

func main() {
	flag.Parse()
	// Upstream's identity for the builtin; a pre-installed plugin gets its own
	// from NRI_PLUGIN_NAME/NRI_PLUGIN_IDX, which pkg/stub reads first.
	identity := validator.GetDefaultValidator(&validator.DefaultValidatorConfig{Enable: true})
	var opts []stub.Option
	if *socketPath != "" {
		opts = append(opts, stub.WithSocketPath(*socketPath))
	}
	if name := *pluginName; name != "" || os.Getenv(api.PluginNameEnvVar) == "" {
		if name == "" {
			name = identity.Base
		}
		opts = append(opts, stub.WithPluginName(name))
	}
	if idx := *pluginIdx; idx != "" || os.Getenv(api.PluginIdxEnvVar) == "" {
		if idx == "" {
			idx = identity.Index
		}
		opts = append(opts, stub.WithPluginIdx(idx))
	}
	s, err := stub.New(&plugin{}, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "failed to create plugin stub: %v\n", err)
		os.Exit(1)
	}
	if err := s.Run(context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "plugin exited with error %v\n", err)
		os.Exit(1)
	}
}
