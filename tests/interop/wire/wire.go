// Package wire holds what the interop peers share: the protobuf wire format
// of the few fields they read or write by hand, Gitaly's v2 token, a codec
// that passes message bytes through untouched, and the deterministic
// payloads both sides checksum.
//
// Written for these tests only, from the protobuf encoding rules and
// Gitaly's documented token format.
package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"time"
)

// ---- protobuf wire format ---------------------------------------------------

// AppendVarint appends v as a base-128 varint.
func AppendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// AppendBytes appends field `num` as a length-delimited field.
func AppendBytes(b []byte, num int, v []byte) []byte {
	b = AppendVarint(b, uint64(num)<<3|2)
	b = AppendVarint(b, uint64(len(v)))
	return append(b, v...)
}

// AppendBool appends field `num` as a varint 0/1 (proto3 omits false).
func AppendBool(b []byte, num int, v bool) []byte {
	if !v {
		return b
	}
	b = AppendVarint(b, uint64(num)<<3)
	return append(b, 1)
}

// Field is one top-level field of a message: its number, wire type, and
// for length-delimited fields its bytes (for varints, Varint).
type Field struct {
	Num    int
	Type   int
	Bytes  []byte
	Varint uint64
}

func readVarint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * uint(i))
		if b[i] < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("truncated or overlong varint")
}

// Fields splits a message into its top-level fields.
func Fields(b []byte) ([]Field, error) {
	var out []Field
	for len(b) > 0 {
		key, n, err := readVarint(b)
		if err != nil {
			return nil, err
		}
		b = b[n:]
		f := Field{Num: int(key >> 3), Type: int(key & 7)}
		switch f.Type {
		case 0:
			f.Varint, n, err = readVarint(b)
			if err != nil {
				return nil, err
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return nil, errors.New("truncated fixed64")
			}
			b = b[8:]
		case 2:
			l, n, err := readVarint(b)
			if err != nil {
				return nil, err
			}
			b = b[n:]
			if uint64(len(b)) < l {
				return nil, fmt.Errorf("field %d: length %d past the end (%d left)", f.Num, l, len(b))
			}
			f.Bytes = b[:l]
			b = b[l:]
		case 5:
			if len(b) < 4 {
				return nil, errors.New("truncated fixed32")
			}
			b = b[4:]
		default:
			return nil, fmt.Errorf("field %d: unsupported wire type %d", f.Num, f.Type)
		}
		out = append(out, f)
	}
	return out, nil
}

// Get returns the bytes of the last occurrence of length-delimited field
// `num` (protobuf's rule for a repeated singular field), and whether it was there.
func Get(b []byte, num int) ([]byte, bool, error) {
	fields, err := Fields(b)
	if err != nil {
		return nil, false, err
	}
	var v []byte
	found := false
	for _, f := range fields {
		if f.Num == num && f.Type == 2 {
			v, found = f.Bytes, true
		}
	}
	return v, found, nil
}

// Repository encodes gitaly.Repository { storage_name = 2; relative_path = 3; }.
func Repository(storage, relativePath string) []byte {
	var r []byte
	r = AppendBytes(r, 2, []byte(storage))
	return AppendBytes(r, 3, []byte(relativePath))
}

// PayloadField is where the interop peers carry their payload: field 2 of
// every request and response message. It is the data/stdin field of
// CreateRepositoryFromBundleRequest and SSHUploadPackRequest and the data
// field of GetBlobResponse; in the other messages praefect does not read it.
const PayloadField = 2

// Message is a request or response message: optionally the target
// repository (field 1) and the payload (field 2, always present, even empty).
func Message(repository []byte, payload []byte) []byte {
	var m []byte
	if repository != nil {
		m = AppendBytes(m, 1, repository)
	}
	return AppendBytes(m, PayloadField, payload)
}

// ---- payloads -----------------------------------------------------------------

// Payloads yields deterministic pseudo-random payloads from a seed: both
// sides can regenerate or checksum them.
type Payloads struct{ r *rand.Rand }

func NewPayloads(seed int64) *Payloads { return &Payloads{rand.New(rand.NewSource(seed))} }

func (p *Payloads) Next(size int) []byte {
	b := make([]byte, size)
	p.r.Read(b)
	return b
}

// ---- raw codec ----------------------------------------------------------------

// Raw passes message bytes through: Marshal takes a *[]byte, Unmarshal
// fills one. Registered nowhere: passed explicitly to the calls and the server.
type Raw struct{}

func (Raw) Marshal(v interface{}) ([]byte, error) {
	p, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return *p, nil
}

func (Raw) Unmarshal(data []byte, v interface{}) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*p = append([]byte(nil), data...)
	return nil
}

func (Raw) Name() string   { return "proto" }
func (Raw) String() string { return "proto" }

// ---- Gitaly v2 tokens ---------------------------------------------------------

// Bearer is Gitaly's v2 token for `secret` at `now`:
// "Bearer v2.<hex HMAC-SHA256(secret, ts)>.<ts>", ts in decimal Unix seconds.
func Bearer(secret string, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	return "Bearer v2." + hex.EncodeToString(mac.Sum(nil)) + "." + ts
}

// ErrMalformed and ErrDenied tell the two ways a token fails: Gitaly answers
// the first with UNAUTHENTICATED, the second with PERMISSION_DENIED.
var (
	ErrMalformed = errors.New("malformed")
	ErrDenied    = errors.New("denied")
)

// CheckBearer verifies a v2 token: signed with `secret`, within ±30 s of now.
func CheckBearer(value, secret string, now time.Time) error {
	const prefix = "Bearer v2."
	if !strings.HasPrefix(value, prefix) {
		return fmt.Errorf("%w: not a v2 bearer token", ErrMalformed)
	}
	parts := strings.Split(value[len(prefix):], ".")
	if len(parts) != 2 {
		return fmt.Errorf("%w: expected <hmac>.<timestamp>", ErrMalformed)
	}
	sig, err := hex.DecodeString(parts[0])
	if err != nil {
		return fmt.Errorf("%w: signature is not hex", ErrMalformed)
	}
	ts, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp is not a decimal integer", ErrMalformed)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return fmt.Errorf("%w: wrong signature", ErrDenied)
	}
	skew := now.Unix() - ts
	if skew > 30 || skew < -30 {
		return fmt.Errorf("%w: token is %d s off", ErrDenied, skew)
	}
	return nil
}

// ---- metadata as JSON ----------------------------------------------------------

// MetadataJSON renders metadata for a JSON report: -bin values (raw bytes
// once grpc decoded them) as hex, the others as they are.
func MetadataJSON(md map[string][]string) map[string][]string {
	out := make(map[string][]string, len(md))
	for k, vs := range md {
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				v = hex.EncodeToString([]byte(v))
			}
			out[k] = append(out[k], v)
		}
	}
	return out
}

// BigEndianLength reads the 4-byte length prefix of the framed files the
// client reads and writes.
func BigEndianLength(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
