package secrets

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// adversarial are inputs built to make a search slow: many candidates,
// long lines and tokens, many overlapping matches. Each makes size bytes.
var adversarial = []struct {
	name string
	make func(tb testing.TB, size int) []byte
}{
	{"needles", func(_ testing.TB, n int) []byte { return fill(n, "ecretECRET") }},
	{"aws-ids-and-secrets", func(_ testing.TB, n int) []byte {
		return fillFunc(n, func() string {
			return fakeAWSID() + " aws_secret_access_key=" + fakeAWSSecret() + "\n"
		})
	}},
	{"aws-ids", func(_ testing.TB, n int) []byte { return fillFunc(n, func() string { return fakeAWSID() + " " }) }},
	{"pem-begin-lines", func(_ testing.TB, n int) []byte { return fill(n, "-----BEGIN PRIVATE KEY-----\n") }},
	{"pem-keys", func(tb testing.TB, n int) []byte { return fill(n, rsaPEM(tb)) }},
	{"pem-unterminated", func(_ testing.TB, n int) []byte {
		return fill(n, "-----BEGIN RSA PRIVATE KEY-----\n"+randFrom(base64Alphabet, 16<<10))
	}},
	{"tokens-and-jwts", func(_ testing.TB, n int) []byte {
		return fillFunc(n, func() string { return fakeGitHub("ghp_") + " " + fakeJWT() + "\n" })
	}},
	{"overlapping-urls", func(_ testing.TB, n int) []byte {
		return fillFunc(n, func() string { return "https://u:" + fakeGitHub("ghp_") + "@h" + randFrom("abc", 4) + ".corp/ " })
	}},
	{"url-schemes", func(_ testing.TB, n int) []byte { return fill(n, "a://") }},
	{"url-authorities", func(_ testing.TB, n int) []byte { return fill(n, "ab://u:"+strings.Repeat("p", 700)+"@") }},
	{"jwt-prefixes", func(_ testing.TB, n int) []byte { return fill(n, "eyJ") }},
	{"jwt-shapes", func(_ testing.TB, n int) []byte { return fill(n, "eyJabcdefgh.eyJabcdefgh.") }},
	{"one-long-token", func(_ testing.TB, n int) []byte {
		return []byte("pypi-AgEIcHlwaS5vcmc" + randFrom(urlAlphabet, n-20))
	}},
	{"gcp-keys", func(tb testing.TB, n int) []byte {
		key := strings.ReplaceAll(rsaPEM(tb), "\n", `\n`)
		return append([]byte(`{"type": "service_account",`), fill(n, `"private_key": "`+key+`",`)...)
	}},
	{"npm-auth", func(_ testing.TB, n int) []byte { return fill(n, "_authToken=") }},
	{"newlines", func(_ testing.TB, n int) []byte { return fill(n, "\n") }},
	{"nuls", func(_ testing.TB, n int) []byte { return make([]byte, n) }},
}

// fill repeats s to n bytes.
func fill(n int, s string) []byte {
	return []byte(strings.Repeat(s, n/len(s)+1)[:n])
}

// fillFunc appends what next returns until n bytes.
func fillFunc(n int, next func() string) []byte {
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(next())
	}
	return []byte(b.String()[:n])
}

// perByte reports the wall-clock and CPU nanoseconds per byte of an
// iteration over n bytes.
func perByte(b *testing.B, cpu time.Duration, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/byte")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/byte")
	}
}

// BenchmarkAdversarial runs Search on each adversarial input at the size
// limit (1x, MaxFileBytes) and ten times it (10x), and reports ns/byte:
// linear scaling shows as the same ns/byte at both sizes (compare them, do
// not read the absolute times). Run with -benchtime 1x on a busy machine.
func BenchmarkAdversarial(b *testing.B) {
	for _, in := range adversarial {
		for _, scale := range []int{1, 10} {
			data := in.make(b, scale*MaxFileBytes)
			b.Run(fmt.Sprintf("%s/%dx", in.name, scale), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				cpu := cpuTime()
				for range b.N {
					Search(context.Background(), "/f", data, Options{})
				}
				perByte(b, cpuTime()-cpu, len(data))
			})
		}
	}
}

// BenchmarkAdversarialText is BenchmarkAdversarial for ScanText, the
// search of image metadata (a label of the input's size).
func BenchmarkAdversarialText(b *testing.B) {
	for _, in := range adversarial {
		for _, scale := range []int{1, 10} {
			text := string(in.make(b, scale*MaxFileBytes))
			b.Run(fmt.Sprintf("%s/%dx", in.name, scale), func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				cpu := cpuTime()
				for range b.N {
					ScanText("label", text)
				}
				perByte(b, cpuTime()-cpu, len(text))
			})
		}
	}
}
