// Command kvplugin is a go-plugin KV plugin served the way a Kubernetes-deployed
// ("intercom") plugin must be: on TCP, on the container port, on all interfaces.
//
// Upstream go-plugin's plugin.Serve always listens on a unix socket on Linux
// (serverListener in server.go), which nothing outside the pod can reach, so this
// harness reproduces its wire behaviour with the same upstream pieces:
//
//   - the magic cookie check and its friendly message (BASIC_PLUGIN=hello, from
//     github.com/hashicorp/go-plugin/examples/grpc/shared.Handshake);
//   - version negotiation over PLUGIN_PROTOCOL_VERSIONS;
//   - AutoMTLS exactly as go-plugin's server does it (PLUGIN_CLIENT_CERT in, a
//     throwaway ECDSA P-521 cert out, base64 RawStdEncoding DER in the announce line);
//   - the announce line CORE|APP|tcp|ADDR|grpc|CERT on stdout;
//   - grpc.health.v1 with service "plugin" SERVING, plugin.GRPCController/Shutdown,
//     and the upstream KV service (examples/grpc/proto, examples/grpc/shared);
//   - hclog JSON logs on stderr, one line per KV call.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/examples/grpc/proto"
	"github.com/hashicorp/go-plugin/examples/grpc/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/emptypb"
)

const appVersion = 1

var logger = hclog.New(&hclog.LoggerOptions{
	Name:       "kvplugin",
	Level:      hclog.Trace,
	Output:     os.Stderr,
	JSONFormat: true,
})

// kv keeps values in memory: a pod's filesystem is not something to rely on.
type kv struct{ data map[string][]byte }

func (k *kv) Put(key string, value []byte) error {
	logger.Info("put", "key", key, "bytes", len(value))
	k.data[key] = append([]byte(nil), value...)
	return nil
}

func (k *kv) Get(key string) ([]byte, error) {
	logger.Debug("get", "key", key)
	v, ok := k.data[key]
	if !ok {
		return nil, fmt.Errorf("key %q not found", key)
	}
	return v, nil
}

func negotiate() int {
	offered := os.Getenv("PLUGIN_PROTOCOL_VERSIONS")
	if offered == "" {
		return appVersion
	}
	for _, v := range strings.Split(offered, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n == appVersion {
			return appVersion
		}
	}
	// Like go-plugin: answer our own version and let the host refuse it.
	return appVersion
}

// generateCert is go-plugin's mtls.go generateCert.
func generateCert() ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	template := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"HashiCorp"}},
		DNSNames:              []string{"localhost"},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		SerialNumber:          sn,
		NotBefore:             time.Now().Add(-30 * time.Second),
		NotAfter:              time.Now().Add(262980 * time.Hour),
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	var certOut, keyOut bytes.Buffer
	_ = pem.Encode(&certOut, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyBytes, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	_ = pem.Encode(&keyOut, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyBytes})
	return certOut.Bytes(), keyOut.Bytes(), nil
}

// controller serves plugin.GRPCController/Shutdown (google.protobuf.Empty in and out).
type controller struct{ stop func() }

func (c *controller) shutdown(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := new(emptypb.Empty)
	if err := dec(in); err != nil {
		return nil, err
	}
	logger.Info("shutdown requested")
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.stop()
	}()
	return &emptypb.Empty{}, nil
}

func main() {
	hs := shared.Handshake
	if os.Getenv(hs.MagicCookieKey) != hs.MagicCookieValue {
		fmt.Fprintln(os.Stderr, "This binary is a plugin. These are not meant to be executed directly.\n"+
			"Please execute the program that consumes these plugins, which will\n"+
			"load any plugins automatically")
		os.Exit(1)
	}
	version := negotiate()
	port := os.Getenv("PLUGIN_MIN_PORT")
	if port == "" {
		port = "50077"
	}
	bind := os.Getenv("PLUGIN_BIND_ADDRESS")
	if bind == "" {
		bind = "0.0.0.0"
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(bind, port))
	if err != nil {
		logger.Error("listen failed", "error", err)
		os.Exit(1)
	}
	var opts []grpc.ServerOption
	serverCert := ""
	if clientCert := os.Getenv("PLUGIN_CLIENT_CERT"); clientCert != "" {
		logger.Debug("configuring server automatic mTLS")
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(clientCert)) {
			logger.Error("client cert provided but failed to parse", "cert", clientCert)
		}
		certPEM, keyPEM, err := generateCert()
		if err != nil {
			panic(err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			panic(err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS12,
			RootCAs:      pool,
			ServerName:   "localhost",
		})))
		serverCert = base64.RawStdEncoding.EncodeToString(cert.Certificate[0])
	}
	server := grpc.NewServer(opts...)
	hc := health.NewServer()
	hc.SetServingStatus("plugin", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(server, hc)
	ctl := &controller{stop: server.GracefulStop}
	server.RegisterService(&grpc.ServiceDesc{
		ServiceName: "plugin.GRPCController",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Shutdown", Handler: ctl.shutdown}},
	}, ctl)
	proto.RegisterKVServer(server, &shared.GRPCServer{Impl: &kv{data: map[string][]byte{}}})

	logger.Debug("plugin address", "network", "tcp", "address", lis.Addr().String())
	fmt.Printf("%d|%d|tcp|%s|grpc|%s\n", 1, version, lis.Addr().String(), serverCert)
	_ = os.Stdout.Sync()
	if err := server.Serve(lis); err != nil {
		logger.Error("serve failed", "error", err)
		os.Exit(1)
	}
	logger.Info("plugin exiting")
}
