package bytesize

import "testing"

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 bytes"},
		{512, "512 bytes"},
		{1023, "1023 bytes"},
		{1024, "1 KiB"},
		{1536 << 10, "1.5 MiB"},
		{128 << 20, "128 MiB"},
		{8 << 30, "8 GiB"},
		{8<<30 + 1, "8.0 GiB"},
		{1<<62 + 1<<61, "6 EiB"},
		{1<<20 - 1, "1.0 MiB"},
		{-1536, "-1.5 KiB"},
		{1023 << 10, "1023 KiB"},
	} {
		if got := Format(tc.n); got != tc.want {
			t.Errorf("Format(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
