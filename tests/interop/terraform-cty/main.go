// Command terraform-cty is the golden-vector oracle for plugwire.grpc.terraform.cty:
// it reads JSON test cases (one per line) on stdin and answers one JSON line each,
// using the real github.com/zclconf/go-cty codecs.
//
// Ops:
//   - "encode": build the value described by "spec" at type "type", unmark it
//     deeply and answer go-cty's msgpack (hex) and JSON encodings.
//   - "decode_msgpack" / "decode_json": decode "data" (hex / text) at "type" and
//     answer go-cty's re-encodings of the result (or the error).
//   - "type": parse a JSON type specification and answer go-cty's re-marshal.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"
)

type spec struct {
	K        string           `json:"k"`
	Str      string           `json:"str,omitempty"`
	Bool     bool             `json:"bool,omitempty"`
	Int      string           `json:"int,omitempty"`
	Float    string           `json:"float,omitempty"`
	Dec      string           `json:"dec,omitempty"`
	Elems    []spec           `json:"elems,omitempty"`
	Attrs    map[string]spec  `json:"attrs,omitempty"`
	Type     json.RawMessage  `json:"type,omitempty"`
	V        *spec            `json:"v,omitempty"`
	Marks    []string         `json:"marks,omitempty"`
	NotNull  bool             `json:"not_null,omitempty"`
	Prefix   string           `json:"prefix,omitempty"`
	Lower    *spec            `json:"lower,omitempty"`
	LowerInc bool             `json:"lower_inc,omitempty"`
	Upper    *spec            `json:"upper,omitempty"`
	UpperInc bool             `json:"upper_inc,omitempty"`
	LenLower *int             `json:"len_lower,omitempty"`
	LenUpper *int             `json:"len_upper,omitempty"`
	Keys     map[string]*spec `json:"-"`
}

type request struct {
	ID   string          `json:"id"`
	Op   string          `json:"op"`
	Type json.RawMessage `json:"type"`
	Spec *spec           `json:"spec"`
	Data string          `json:"data"`
}

type response struct {
	ID      string `json:"id"`
	Msgpack string `json:"msgpack,omitempty"`
	JSON    string `json:"json,omitempty"`
	JSONErr string `json:"json_error,omitempty"`
	Type    string `json:"type,omitempty"`
	Value   string `json:"value,omitempty"`
	Error   string `json:"error,omitempty"`
}

func build(s *spec, ty cty.Type) (v cty.Value) {
	switch s.K {
	case "null":
		return cty.NullVal(ty)
	case "unknown":
		if ty == cty.DynamicPseudoType {
			return cty.DynamicVal
		}
		b := cty.UnknownVal(ty).Refine()
		if s.NotNull {
			b = b.NotNull()
		}
		if s.Prefix != "" {
			b = b.StringPrefixFull(s.Prefix)
		}
		if s.Lower != nil {
			b = b.NumberRangeLowerBound(build(s.Lower, cty.Number), s.LowerInc)
		}
		if s.Upper != nil {
			b = b.NumberRangeUpperBound(build(s.Upper, cty.Number), s.UpperInc)
		}
		if s.LenLower != nil {
			b = b.CollectionLengthLowerBound(*s.LenLower)
		}
		if s.LenUpper != nil {
			b = b.CollectionLengthUpperBound(*s.LenUpper)
		}
		return b.NewValue()
	case "mark":
		inner := build(s.V, ty)
		for _, m := range s.Marks {
			inner = inner.Mark(m)
		}
		return inner
	case "dyn":
		var dt cty.Type
		if err := dt.UnmarshalJSON(s.Type); err != nil {
			panic(err)
		}
		return build(s.V, dt)
	case "str":
		return cty.StringVal(s.Str)
	case "bool":
		return cty.BoolVal(s.Bool)
	case "int":
		return cty.MustParseNumberVal(s.Int)
	case "dec":
		return cty.MustParseNumberVal(s.Dec)
	case "float":
		f, err := strconv.ParseFloat(s.Float, 64)
		if err != nil {
			panic(err)
		}
		return cty.NumberFloatVal(f)
	case "list", "set", "tuple":
		vals := make([]cty.Value, len(s.Elems))
		for i := range s.Elems {
			var ety cty.Type
			if ty.IsTupleType() {
				ety = ty.TupleElementType(i)
			} else {
				ety = ty.ElementType()
			}
			vals[i] = build(&s.Elems[i], ety)
		}
		switch {
		case ty.IsTupleType():
			return cty.TupleVal(vals)
		case len(vals) == 0 && ty.IsListType():
			return cty.ListValEmpty(ty.ElementType())
		case len(vals) == 0:
			return cty.SetValEmpty(ty.ElementType())
		case ty.IsListType():
			return cty.ListVal(vals)
		default:
			return cty.SetVal(vals)
		}
	case "map":
		if len(s.Attrs) == 0 {
			return cty.MapValEmpty(ty.ElementType())
		}
		vals := map[string]cty.Value{}
		for k, e := range s.Attrs {
			e := e
			vals[k] = build(&e, ty.ElementType())
		}
		return cty.MapVal(vals)
	case "object":
		vals := map[string]cty.Value{}
		for k, aty := range ty.AttributeTypes() {
			if e, ok := s.Attrs[k]; ok {
				vals[k] = build(&e, aty)
			} else {
				vals[k] = cty.NullVal(aty)
			}
		}
		return cty.ObjectVal(vals)
	}
	panic(fmt.Sprintf("unknown spec kind %q", s.K))
}

func encodeAll(val cty.Value, ty cty.Type, resp *response) {
	val, _ = val.UnmarkDeep()
	mp, err := ctymsgpack.Marshal(val, ty)
	if err != nil {
		resp.Error = err.Error()
		return
	}
	resp.Msgpack = hex.EncodeToString(mp)
	js, err := ctyjson.Marshal(val, ty)
	if err != nil {
		resp.JSONErr = err.Error()
	} else {
		resp.JSON = string(js)
	}
	resp.Value = fmt.Sprintf("%#v", val)
}

func handle(req *request) (resp response) {
	resp.ID = req.ID
	defer func() {
		if r := recover(); r != nil {
			resp = response{ID: req.ID, Error: fmt.Sprintf("panic: %v", r)}
		}
	}()
	var ty cty.Type
	if err := ty.UnmarshalJSON(req.Type); err != nil {
		resp.Error = "type: " + err.Error()
		return
	}
	switch req.Op {
	case "type":
		out, err := ctyjson.MarshalType(ty)
		if err != nil {
			resp.Error = err.Error()
		}
		resp.Type = string(out)
	case "encode":
		encodeAll(build(req.Spec, ty), ty, &resp)
	case "decode_msgpack":
		raw, err := hex.DecodeString(req.Data)
		if err != nil {
			resp.Error = err.Error()
			return
		}
		val, err := ctymsgpack.Unmarshal(raw, ty)
		if err != nil {
			resp.Error = err.Error()
			return
		}
		encodeAll(val, ty, &resp)
	case "decode_json":
		val, err := ctyjson.Unmarshal([]byte(req.Data), ty)
		if err != nil {
			resp.Error = err.Error()
			return
		}
		encodeAll(val, ty, &resp)
	default:
		resp.Error = "unknown op " + req.Op
	}
	return resp
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			fmt.Fprintln(os.Stderr, "bad request:", err)
			os.Exit(2)
		}
		resp := handle(&req)
		if err := out.Encode(&resp); err != nil {
			os.Exit(3)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
