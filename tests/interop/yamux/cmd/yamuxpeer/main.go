// Command yamuxpeer is a hashicorp/yamux peer driven line by line on stdin, used by
// plugwire's interop tests to run the upstream Go implementation against the Python
// one in both roles.
//
// It listens on (-listen) or dials (-dial) a unix socket, runs a yamux client
// (-client) or server session over the one connection and then:
//   - serves streams the peer opens, by their first byte:
//     'E' echo until EOF then close; 'H' read until EOF, reply "<count> <sha256>";
//     'G' + 8-byte big-endian n: write n pattern bytes, close, drain;
//     'W' read until an error, then print "event W <id> <error>".
//   - runs commands read from stdin, one reply line each ("ok ..." / "err ..."):
//     echo N SIZE | hash N SIZE | gen N SIZE | ping | goaway | streams | close |
//     wait-closed MS | expect-reset | flood N | exit
//
// Flags: -backlog, -window, -keepalive-ms, -no-accept tune the session.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

var outMu sync.Mutex

func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

func pattern(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i + seed) % 251)
	}
	return b
}

func main() {
	listen := flag.String("listen", "", "unix socket path to listen on")
	dial := flag.String("dial", "", "unix socket path to dial")
	client := flag.Bool("client", false, "be the yamux client (odd stream ids)")
	backlog := flag.Int("backlog", 256, "AcceptBacklog")
	window := flag.Uint("window", 256*1024, "MaxStreamWindowSize")
	keepalive := flag.Int("keepalive-ms", 0, "keepalive interval in ms (0 disables)")
	noAccept := flag.Bool("no-accept", false, "never accept streams (to fill the backlog)")
	flag.Parse()

	var conn net.Conn
	var err error
	if *listen != "" {
		ln, lerr := net.Listen("unix", *listen)
		if lerr != nil {
			say("err listen %v", lerr)
			os.Exit(1)
		}
		say("ready")
		conn, err = ln.Accept()
		ln.Close()
	} else {
		conn, err = net.Dial("unix", *dial)
	}
	if err != nil {
		say("err connect %v", err)
		os.Exit(1)
	}

	cfg := yamux.DefaultConfig()
	cfg.AcceptBacklog = *backlog
	cfg.MaxStreamWindowSize = uint32(*window)
	cfg.EnableKeepAlive = *keepalive > 0
	if *keepalive > 0 {
		cfg.KeepAliveInterval = time.Duration(*keepalive) * time.Millisecond
	}
	cfg.LogOutput = os.Stderr
	var sess *yamux.Session
	if *client {
		sess, err = yamux.Client(conn, cfg)
	} else {
		sess, err = yamux.Server(conn, cfg)
	}
	if err != nil {
		say("err session %v", err)
		os.Exit(1)
	}
	say("session")

	if !*noAccept {
		go acceptLoop(sess)
	}

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "exit" {
			sess.Close()
			say("ok exit")
			return
		}
		say("%s", run(sess, fields))
	}
	sess.Close()
}

func acceptLoop(sess *yamux.Session) {
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go serve(st)
	}
}

func serve(st *yamux.Stream) {
	defer st.Close()
	kind := make([]byte, 1)
	if _, err := io.ReadFull(st, kind); err != nil {
		say("event ? %d %v", st.StreamID(), err)
		return
	}
	switch kind[0] {
	case 'E':
		_, err := io.Copy(st, st)
		if err != nil {
			say("event E %d %v", st.StreamID(), err)
		}
	case 'H':
		h := sha256.New()
		n, err := io.Copy(h, st)
		if err != nil {
			say("event H %d %v", st.StreamID(), err)
			return
		}
		fmt.Fprintf(st, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
	case 'G':
		var size [8]byte
		if _, err := io.ReadFull(st, size[:]); err != nil {
			say("event G %d %v", st.StreamID(), err)
			return
		}
		n := int(binary.BigEndian.Uint64(size[:]))
		if _, err := st.Write(pattern(n, n)); err != nil {
			say("event G %d %v", st.StreamID(), err)
			return
		}
		st.Close()
		_, _ = io.Copy(io.Discard, st)
	case 'W':
		_, err := io.Copy(io.Discard, st)
		if err == nil {
			err = errors.New("EOF")
		}
		say("event W %d %v", st.StreamID(), err)
	default:
		say("event ? %d unknown kind %q", st.StreamID(), kind[0])
	}
}

func parallel(n int, fn func(i int) error) error {
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) { errs <- fn(i) }(i)
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func atoi(s string) int {
	v, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return v
}

func run(sess *yamux.Session, f []string) string {
	switch f[0] {
	case "echo", "hash", "gen":
		if len(f) != 3 {
			return "err usage: " + f[0] + " N SIZE"
		}
		n, size := atoi(f[1]), atoi(f[2])
		err := parallel(n, func(i int) error {
			st, err := sess.OpenStream()
			if err != nil {
				return err
			}
			defer st.Close()
			data := pattern(i, size)
			var want []byte
			switch f[0] {
			case "echo":
				want = data
				go func() {
					st.Write([]byte{'E'})
					st.Write(data)
					st.Close()
				}()
			case "hash":
				sum := sha256.Sum256(data)
				want = []byte(fmt.Sprintf("%d %s", size, hex.EncodeToString(sum[:])))
				go func() {
					st.Write([]byte{'H'})
					st.Write(data)
					st.Close()
				}()
			case "gen":
				want = pattern(size, size)
				var hdr [9]byte
				hdr[0] = 'G'
				binary.BigEndian.PutUint64(hdr[1:], uint64(size))
				st.Write(hdr[:])
				st.Close()
			}
			got, err := io.ReadAll(st)
			if err != nil {
				return fmt.Errorf("stream %d: %w", st.StreamID(), err)
			}
			if !bytes.Equal(got, want) {
				return fmt.Errorf("stream %d: got %d bytes, want %d (equal prefix %d)", st.StreamID(), len(got), len(want), prefix(got, want))
			}
			return nil
		})
		if err != nil {
			return "err " + err.Error()
		}
		return fmt.Sprintf("ok %s %d %d", f[0], n, size)
	case "ping":
		rtt, err := sess.Ping()
		if err != nil {
			return "err " + err.Error()
		}
		return fmt.Sprintf("ok ping %d", rtt.Nanoseconds())
	case "goaway":
		if err := sess.GoAway(); err != nil {
			return "err " + err.Error()
		}
		return "ok goaway"
	case "streams":
		return fmt.Sprintf("ok streams %d", sess.NumStreams())
	case "close":
		if err := sess.Close(); err != nil {
			return "err " + err.Error()
		}
		return "ok close"
	case "wait-closed":
		select {
		case <-sess.CloseChan():
			return "ok closed"
		case <-time.After(time.Duration(atoi(f[1])) * time.Millisecond):
			return "err still open"
		}
	case "expect-reset":
		// Open a stream and read: the peer is expected to reset it.
		st, err := sess.OpenStream()
		if err != nil {
			return "err open: " + err.Error()
		}
		st.Write([]byte{'E'})
		st.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 16)
		_, err = st.Read(buf)
		if errors.Is(err, yamux.ErrConnectionReset) {
			return "ok reset"
		}
		return fmt.Sprintf("err read returned %v", err)
	case "flood":
		// Open N streams without waiting; report how many the peer reset.
		n := atoi(f[1])
		var mu sync.Mutex
		resets := 0
		_ = parallel(n, func(i int) error {
			st, err := sess.OpenStream()
			if err != nil {
				return err
			}
			st.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 1)
			_, err = st.Read(buf)
			if errors.Is(err, yamux.ErrConnectionReset) {
				mu.Lock()
				resets++
				mu.Unlock()
			}
			return nil
		})
		return fmt.Sprintf("ok flood %d", resets)
	}
	return "err unknown command " + strings.Join(f, " ")
}

func prefix(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}
