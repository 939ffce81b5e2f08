// Stand-in for terraform's internal/backend/remote-state/oci module (a separate module
// upstream that the Go module proxy does not serve). See ../../README.md.
module github.com/hashicorp/terraform/internal/backend/remote-state/oci

go 1.26
