// Package oci stands in for terraform's "oci" remote-state backend, which this test
// build of the CLI leaves out: the backend exists by name, and selecting it fails
// with a diagnostic saying so. See tests/interop/terraform/README.md.
package oci

import (
	"github.com/hashicorp/terraform/internal/backend"
	"github.com/hashicorp/terraform/internal/configs/configschema"
	"github.com/hashicorp/terraform/internal/states/statemgr"
	"github.com/hashicorp/terraform/internal/tfdiags"
	"github.com/zclconf/go-cty/cty"
)

const name = "oci"

// New returns a backend whose every operation reports that it is not in this build.
func New() backend.Backend { return unavailable{} }

type unavailable struct{}

func diags() tfdiags.Diagnostics {
	var d tfdiags.Diagnostics
	return d.Append(tfdiags.Sourceless(tfdiags.Error,
		"Backend not available in this build",
		"The \""+name+"\" backend is not available in this build of Terraform (plugwire's test harness builds the CLI without the remote-state backend modules)."))
}

func (unavailable) ConfigSchema() *configschema.Block { return &configschema.Block{} }

func (unavailable) PrepareConfig(v cty.Value) (cty.Value, tfdiags.Diagnostics) {
	return v, diags()
}

func (unavailable) Configure(cty.Value) tfdiags.Diagnostics { return diags() }

func (unavailable) StateMgr(string) (statemgr.Full, tfdiags.Diagnostics) { return nil, diags() }

func (unavailable) DeleteWorkspace(string, bool) tfdiags.Diagnostics { return diags() }

func (unavailable) Workspaces() ([]string, tfdiags.Diagnostics) { return nil, diags() }

var _ backend.Backend = unavailable{}
