// Command admissionplugin is a CIPD deployment admission plugin built on luci's
// own plugins/admission.Run. The mode (first argument) picks its behaviour:
//
//	normal     "good/..." admitted, "crash/..." exits 3, "hang/..." blocks until the
//	           host closes stdin, "meta/..." admitted iff an "allowed" metadata
//	           entry equals the hex digest, anything else FailedPrecondition (logged).
//	admit-all  every admission is admitted (the benchmark's Go baseline).
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"go.chromium.org/luci/common/logging"
	"go.chromium.org/luci/common/logging/gologger"

	repopb "go.chromium.org/luci/cipd/api/cipd/v1/repopb"
	"go.chromium.org/luci/cipd/client/cipd/plugin/plugins/admission"
	"go.chromium.org/luci/cipd/client/cipd/plugin/protocol"
)

func main() {
	mode := "normal"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	ctx := gologger.StdConfig.Use(context.Background())
	handler := normal
	if mode == "admit-all" {
		handler = func(context.Context, *protocol.Admission, admission.InstanceInfo) error { return nil }
	}
	if err := admission.Run(ctx, os.Stdin, "plugwire-interop-go 1.0 ("+mode+")", handler); err != nil {
		fmt.Fprintf(os.Stderr, "admission plugin failed: %s\n", err)
		os.Exit(1)
	}
}

func normal(ctx context.Context, adm *protocol.Admission, info admission.InstanceInfo) error {
	switch {
	case strings.HasPrefix(adm.Package, "good/"):
		return nil
	case strings.HasPrefix(adm.Package, "crash/"):
		os.Exit(3)
	case strings.HasPrefix(adm.Package, "hang/"):
		<-ctx.Done()
		return status.Errorf(codes.Canceled, "host went away")
	case strings.HasPrefix(adm.Package, "meta/"):
		found := false
		visited := 0
		err := info.VisitMetadata(ctx, []string{"allowed"}, 2, func(md *repopb.InstanceMetadata) bool {
			visited++
			found = string(md.Value) == adm.Instance.HexDigest
			return !found
		})
		switch {
		case err != nil:
			return err
		case !found:
			return status.Errorf(codes.FailedPrecondition, "no matching \"allowed\" metadata among %d entries", visited)
		}
		return nil
	}
	logging.Warningf(ctx, "rejecting %s", adm.Package)
	return status.Errorf(codes.FailedPrecondition, "package %s is not allowed", adm.Package)
}
