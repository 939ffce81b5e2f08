package main

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/identityschema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/numberdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// idPrefix: a thing's id is idPrefix + name (so import by id can restore the name).
const idPrefix = "thing-"

type thing struct{}

var (
	_ resource.Resource                = (*thing)(nil)
	_ resource.ResourceWithImportState = (*thing)(nil)
	_ resource.ResourceWithIdentity    = (*thing)(nil)
)

func newThing() resource.Resource { return &thing{} }

type thingModel struct {
	ID      types.String `tfsdk:"id"`
	Name    types.String `tfsdk:"name"`
	Size    types.Number `tfsdk:"size"`
	Tags    types.Map    `tfsdk:"tags"`
	Secret  types.String `tfsdk:"secret"`
	Created types.String `tfsdk:"created"`
	// PasswordWO is write-only: null in plan and state, only the config has it.
	PasswordWO types.String `tfsdk:"password_wo"`
	Label      types.String `tfsdk:"label"`
}

type thingIdentity struct {
	Name types.String `tfsdk:"name"`
}

func (r *thing) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = identityschema.Schema{
		Attributes: map[string]identityschema.Attribute{
			"name": identityschema.StringAttribute{RequiredForImport: true, Description: "Name."},
		},
	}
}

// checkPassword: password_wo (from the configuration) has 8 characters or more.
func checkPassword(ctx context.Context, config interface {
	GetAttribute(context.Context, path.Path, interface{}) diag.Diagnostics
}, diags *diag.Diagnostics) {
	var pw types.String
	diags.Append(config.GetAttribute(ctx, path.Root("password_wo"), &pw)...)
	if !pw.IsNull() && !pw.IsUnknown() && len(pw.ValueString()) < 8 {
		diags.AddAttributeError(path.Root("password_wo"), "Password too short",
			fmt.Sprintf("password_wo must have 8 characters or more, got %d", len(pw.ValueString())))
	}
}

func (r *thing) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_thing"
}

func (r *thing) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Version:     1,
		Description: "A thing that lives only in Terraform's state.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:      true,
				Description:   "Identifier, `thing-<name>`.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required:      true,
				Description:   "Name; changing it replaces the thing.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"size": schema.NumberAttribute{
				Optional:    true,
				Computed:    true,
				Description: "Size.",
				Default:     numberdefault.StaticBigFloat(big.NewFloat(1)),
			},
			"tags": schema.MapAttribute{
				Optional:    true,
				ElementType: types.StringType,
				Description: "Tags.",
			},
			"secret": schema.StringAttribute{
				Optional:    true,
				Sensitive:   true,
				Description: "Secret.",
			},
			"created": schema.StringAttribute{
				Computed:    true,
				Description: "Creation time, known after apply.",
			},
			"password_wo": schema.StringAttribute{
				Optional:    true,
				Sensitive:   true,
				WriteOnly:   true,
				Description: "Write-only password (8 characters or more), never stored.",
			},
			"label": schema.StringAttribute{
				Optional:           true,
				DeprecationMessage: "label is deprecated: use tags instead.",
				Description:        "Deprecated label.",
			},
		},
	}
}

func (r *thing) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m thingModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	checkPassword(ctx, req.Config, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	m.ID = types.StringValue(idPrefix + m.Name.ValueString())
	m.Created = types.StringValue(time.Now().UTC().Format(time.RFC3339))
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	resp.Diagnostics.Append(resp.Identity.Set(ctx, thingIdentity{Name: m.Name})...)
}

func (r *thing) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m thingModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if m.Name.IsNull() { // just imported: only the id is known
		m.Name = types.StringValue(strings.TrimPrefix(m.ID.ValueString(), idPrefix))
		m.Size = types.NumberValue(big.NewFloat(1))
		m.Tags = types.MapNull(types.StringType)
		m.Created = types.StringValue("imported")
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	resp.Diagnostics.Append(resp.Identity.Set(ctx, thingIdentity{Name: m.Name})...)
}

func (r *thing) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state thingModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	checkPassword(ctx, req.Config, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	plan.ID = state.ID
	plan.Created = state.Created
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	resp.Diagnostics.Append(resp.Identity.Set(ctx, thingIdentity{Name: plan.Name})...)
}

func (r *thing) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}

func (r *thing) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if req.ID == "" && req.Identity != nil { // import block with identity = { name = ... }
		var id thingIdentity
		resp.Diagnostics.Append(req.Identity.Get(ctx, &id)...)
		if resp.Diagnostics.HasError() {
			return
		}
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), idPrefix+id.Name.ValueString())...)
		return
	}
	if !strings.HasPrefix(req.ID, idPrefix) {
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Invalid import id",
			`expected "`+idPrefix+`<name>", got "`+req.ID+`"`)
		return
	}
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}
