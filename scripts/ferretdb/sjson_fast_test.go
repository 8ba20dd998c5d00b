// ehr-sync: differential test of fastUnmarshal against upstream's decoder (copied into
// internal/handler/sjson as ehrsync_fast_test.go by scripts/setup.sh; run there with
// `go test ./internal/handler/sjson/ -run Ehrsync`; FerretDB's tests need the folder to be a git
// repository: `git init` it first).

package sjson

import (
	"math"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// slowUnmarshal decodes the upstream way.
func slowUnmarshal(b []byte) (*types.Document, error) {
	ehrsyncFastDisabled = true
	defer func() { ehrsyncFastDisabled = false }()

	return Unmarshal(b)
}

func compareDecoders(t *testing.T, b []byte) (fast bool) {
	t.Helper()

	want, wantErr := slowUnmarshal(b)
	got, ok := fastUnmarshal(b)

	if !ok {
		return false
	}

	if wantErr != nil {
		t.Fatalf("fast decoder accepted what upstream refuses (%v): %s", wantErr, b)
	}

	if !reflect.DeepEqual(want, got) {
		t.Fatalf("decoders differ for %s:\nupstream %#v\nfast     %#v", b, want, got)
	}

	return true
}

var sampleStrings = []string{"", "a", "Patient/123", "é ü 中文 🙂", `quote " inside`, `back\slash`, "tab\there", "nl\nx", "\u0001ctl", "\u2028sep", "x\xffinvalid"}

func randomValue(r *rand.Rand, depth int) any {
	n := 11
	if depth <= 0 {
		n = 9
	}

	switch r.Intn(n) {
	case 0:
		return sampleStrings[r.Intn(len(sampleStrings))]
	case 1:
		fs := []float64{0, math.Copysign(0, -1), 1.5, -2.25e-300, 1e300, float64(r.Int63()), r.NormFloat64() * 1e6, 3}
		return fs[r.Intn(len(fs))]
	case 2:
		return int32(r.Int63()) - int32(r.Intn(3))
	case 3:
		is := []int64{0, -1, math.MaxInt64, math.MinInt64, r.Int63()}
		return is[r.Intn(len(is))]
	case 4:
		return r.Intn(2) == 0
	case 5:
		return types.Null
	case 6:
		return time.UnixMilli(r.Int63n(1 << 45)).UTC()
	case 7:
		switch r.Intn(4) {
		case 0:
			return types.ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
		case 1:
			return types.Binary{Subtype: types.BinaryGeneric, B: []byte("bin")}
		case 2:
			return types.Regex{Pattern: "^a", Options: "i"}
		default:
			return types.Timestamp(42)
		}
	case 8:
		return "plain"
	case 9:
		return randomDocument(r, depth-1)
	default:
		a := types.MakeArray(0)
		for i := r.Intn(4); i > 0; i-- {
			a.Append(randomValue(r, depth-1))
		}

		return a
	}
}

func randomDocument(r *rand.Rand, depth int) *types.Document {
	d := must.NotFail(types.NewDocument())
	for i := r.Intn(6); i > 0; i-- {
		d.Set([]string{"a", "b", "resourceType", "meta", "valueQuantity", "$s", "x y", "é"}[r.Intn(8)], randomValue(r, depth))
	}

	return d
}

func TestEhrsyncFastUnmarshalRandom(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	fast := 0

	for i := 0; i < 20000; i++ {
		doc := randomDocument(r, 4)
		doc.Set("_id", "conn/Observation/"+string(rune('a'+i%26)))

		b, err := Marshal(doc)
		if err != nil {
			continue // a value sjson does not store (such as an invalid string): not a decoder question
		}

		if compareDecoders(t, b) {
			fast++
		}
	}

	if fast < 5000 {
		t.Fatalf("only %d of 20000 documents took the fast path", fast)
	}

	t.Logf("%d of 20000 random documents decoded by the fast path, all equal to upstream", fast)
}

func TestEhrsyncFastUnmarshalMalformed(t *testing.T) {
	for _, s := range []string{
		``, `{}`, ` {"$s":{"p":{},"$k":[]}}`, `{"$s":{"p":{},"$k":[]}} `, `{"$s":{"p":{},"$k":[]},"a":1}`,
		`{"$s":{"p":{"a":{"t":"int"}},"$k":["a"]},"a":1.5}`, `{"$s":{"p":{"a":{"t":"int"}},"$k":["a"]},"a":01}`,
		`{"$s":{"p":{"a":{"t":"double"}},"$k":["a"]},"a":"1"}`, `{"$s":{"p":{"a":{"t":"string"}},"$k":["a"]},"a":1}`,
		`{"$s":{"p":{"a":{"t":"string"}},"$k":["b"]},"a":"x"}`, `{"$s":{"p":{"a":{"t":"array"}},"$k":["a"]},"a":[]}`,
		`{"$s":{"p":{"a":{"t":"array","i":[]}},"$k":["a"]},"a":[1]}`, `{"$s":{"p":{"a":{"t":"object"}},"$k":["a"]},"a":{}}`,
		`{"$s":{"p":{"a":{"t":"string","x":1}},"$k":["a"]},"a":"x"}`, `{"$s":{"p":{"a":{"t":"bool"}},"$k":["a"]},"a":tru}`,
		`{"$s":{"p":{"a":{"t":"long"}},"$k":["a"]},"a":9223372036854775808}`, `{"$s":{"p":{"a":{"t":"double"}},"$k":["a"]},"a":1e400}`,
		`{"$s":{"p":{"a":{"t":"string"}},"$k":["a"]},"a":"x","a":"y"}`, `{"$s":{"p":{"a":{"t":"null"}},"$k":["a"]},"a":null}`,
		`{"$s":{"p":{"a":{"t":"object","$s":{"p":{},"$k":[]}}},"$k":["a"]},"a":{}}`, `{"$s":{"p":{"a":{"t":"string"}},"$k":["a"],"q":1},"a":"x"}`,
		`{"$s":{"p":{"a":{"t":"string"}},"$k":["a"]},"a":"\u00e9\n"}`, `{"$s":{"p":{"a":{"t":"string"}},"$k":["a"]},"a":"x}`,
	} {
		compareDecoders(t, []byte(s))
	}
}
