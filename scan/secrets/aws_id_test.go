package secrets

import "testing"

// Random access key IDs repeat characters now and then; the entropy bar must not drop
// them (it once did, for about 1 in 250), while a run of one letter is still no key.
func TestAWSKeyIDEntropyBar(t *testing.T) {
	for id, want := range map[string]bool{
		"AKIA6UD3HDZZSZZJZ6UA": true, // entropy 2.90: random, with repeats
		"AKIA7RORRN7KRQROYJP7": true, // 2.85
		"AKIAJAJNTFAFDGQQOAJQ": true, // 2.98
		"AKIAAAAAAAAAAAAAAAAA": false,
		"AKIAABABABABABABABAB": false,
	} {
		found := false
		for _, s := range Scan("/root/.aws/credentials", []byte("[default]\naws_access_key_id = "+id+"\n")) {
			found = found || s.Type == TypeAWSAccessKeyID
		}
		if found != want {
			t.Errorf("%s: found %v, want %v", id, found, want)
		}
	}
}
