// Stand-in for terraform's internal/legacy module: only the remote-state backends
// import it, and those are left out of this build. See ../../README.md.
module github.com/hashicorp/terraform/internal/legacy

go 1.26
