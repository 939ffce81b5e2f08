// Command kubeplane is a multi-call binary holding a whole test control plane:
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, all built
// from their upstream Go modules. Linking them into one binary shares the (large)
// compilation of k8s.io/* between the components and keeps the cache small.
//
// Usage: kubeplane <etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kwok> [flags...]
//
//	kubeplane kwok-assets DIR   writes kwok's own default stages (DIR/stages.yaml,
//	                            the ones kwokctl uses) and its Logs/PortForward CRDs
//	                            (DIR/crds.yaml), as embedded in the kwok module.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	_ "time/tzdata"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kwokcrd "sigs.k8s.io/kwok/kustomize/crd"
	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodeheartbeat "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	"sigs.k8s.io/kwok/pkg/config"
	kwokcmd "sigs.k8s.io/kwok/pkg/kwok/cmd"
	"sigs.k8s.io/kwok/pkg/log"
	"sigs.k8s.io/kwok/pkg/utils/signals"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kubeplane etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kwok [flags...] | kwok-assets DIR")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	name := os.Args[1]
	// Each component parses os.Args[1:] itself: drop the sub-command name.
	os.Args = append([]string{name}, os.Args[2:]...)
	switch name {
	case "etcd":
		etcdmain.Main(os.Args)
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kwok":
		runKwok()
	case "kwok-assets":
		if len(os.Args) != 2 {
			usage()
		}
		if err := writeKwokAssets(os.Args[1]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	default:
		usage()
	}
}

// runKwok mirrors sigs.k8s.io/kwok/cmd/kwok/main.go.
func runKwok() {
	// The Kubernetes components register a global --version (component-base's
	// verflag) that collides with cobra's own --version of kwok's command: give kwok
	// the clean global flag set its own binary would have.
	pflag.CommandLine = pflag.NewFlagSet(os.Args[0], pflag.ExitOnError)
	flagset := pflag.NewFlagSet("global", pflag.ContinueOnError)
	flagset.ParseErrorsAllowlist.UnknownFlags = true
	flagset.Usage = func() {}
	ctx := signals.SetupSignalContext()
	ctx, logger := log.InitFlags(ctx, flagset)
	ctx, err := config.InitFlags(ctx, flagset)
	if err != nil {
		_, _ = os.Stderr.Write([]byte(flagset.FlagUsages()))
		logger.Error("Init config flags", "err", err)
		os.Exit(1)
	}
	command := kwokcmd.NewCommand(ctx)
	command.PersistentFlags().AddFlagSet(flagset)
	if err := command.ExecuteContext(ctx); err != nil {
		logger.Error("Execute exit", "err", err)
		os.Exit(1)
	}
}

// writeKwokAssets writes the stages and CRDs that ship inside the kwok module, so the
// test control plane uses exactly the upstream definitions of this kwok version.
func writeKwokAssets(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stages := []string{
		nodefast.DefaultNodeInit,
		nodeheartbeat.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady,
		podfast.DefaultPodComplete,
		podfast.DefaultPodDelete,
	}
	if err := os.WriteFile(filepath.Join(dir, "stages.yaml"), []byte(joinDocs(stages)), 0o644); err != nil {
		return err
	}
	crds := []string{
		string(kwokcrd.Logs),
		string(kwokcrd.ClusterLogs),
		string(kwokcrd.PortForward),
		string(kwokcrd.ClusterPortForward),
	}
	return os.WriteFile(filepath.Join(dir, "crds.yaml"), []byte(joinDocs(crds)), 0o644)
}

func joinDocs(docs []string) string {
	parts := make([]string, 0, len(docs))
	for _, d := range docs {
		parts = append(parts, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(d), "---")))
	}
	return strings.Join(parts, "\n---\n") + "\n"
}
