package secrets

import (
	"bytes"
	"slices"
	"testing"
)

// A layer analysis reuses one buffer for every file it reads, so Scan must
// return nothing that shares the memory of data.
func TestScanResultsOutliveTheBuffer(t *testing.T) {
	text := "key: " + ecPEM(t) + "\ntoken: " + fakeJWT() + "\nurl: postgres://app:" + randFrom(base62Alphabet, 20) + "@db.internal:5432/app\n" +
		"aws_access_key_id = " + fakeAWSID() + "\naws_secret_access_key = " + fakeAWSSecret() + "\ngh: " + fakeGitHub("ghp_") + "\n"
	want := Scan("/app/config", []byte(text))
	if len(want) < 5 {
		t.Fatalf("found %+v, want the key, the JWT, the URL password, the AWS pair and the GitHub token", want)
	}
	buf := []byte(text)
	got := Scan("/app/config", buf)
	copy(buf, bytes.Repeat([]byte{'x'}, len(buf))) // the next file
	if !slices.Equal(got, want) {
		t.Fatalf("after the buffer was reused:\n got %+v\nwant %+v", got, want)
	}
}
