module plugwire.test/interop/cipd

go 1.26

require (
	go.chromium.org/luci v0.0.0-20260416130104-3fc11caf5caa
	google.golang.org/grpc v1.80.0
)

require (
	github.com/op/go-logging v0.0.0-20160315200505-970db520ece7 // indirect
	golang.org/x/net v0.52.0 // indirect
	golang.org/x/sys v0.42.0 // indirect
	golang.org/x/term v0.41.0 // indirect
	golang.org/x/text v0.35.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260406210006-6f92a3bedf2d // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)

tool go.chromium.org/luci/cipd/client/cipd/plugin/plugins/admission/example
