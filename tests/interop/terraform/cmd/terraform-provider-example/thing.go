package main

import (
	"context"
	"math/big"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
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
)

func newThing() resource.Resource { return &thing{} }

type thingModel struct {
	ID      types.String `tfsdk:"id"`
	Name    types.String `tfsdk:"name"`
	Size    types.Number `tfsdk:"size"`
	Tags    types.Map    `tfsdk:"tags"`
	Secret  types.String `tfsdk:"secret"`
	Created types.String `tfsdk:"created"`
}

func (r *thing) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_thing"
}

func (r *thing) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A thing that lives only in Terraform's state.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:      true,
				Description:   `"thing-" followed by the name.`,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required:      true,
				Description:   "Changing it replaces the thing.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"size": schema.NumberAttribute{
				Optional:    true,
				Computed:    true,
				Description: "Defaults to 1; updated in place.",
				Default:     numberdefault.StaticBigFloat(big.NewFloat(1)),
			},
			"tags": schema.MapAttribute{
				Optional:    true,
				ElementType: types.StringType,
			},
			"secret": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
			},
			"created": schema.StringAttribute{
				Computed:    true,
				Description: "RFC 3339 time of creation; unknown until apply.",
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
	m.ID = types.StringValue(idPrefix + m.Name.ValueString())
	m.Created = types.StringValue(time.Now().UTC().Format(time.RFC3339))
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
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
}

func (r *thing) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state thingModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	plan.ID = state.ID
	plan.Created = state.Created
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *thing) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}

func (r *thing) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !strings.HasPrefix(req.ID, idPrefix) {
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Invalid import id",
			`expected "`+idPrefix+`<name>", got "`+req.ID+`"`)
		return
	}
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}
