package gate

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// userOf names the client from its Authorization header where that is possible without a
// secret: the basic-auth user name, or the unverified "sub" claim of a JWT bearer token
// (suffixed "(token)"). The upstream, not the gateway, authenticates clients.
func userOf(authorization string) string {
	scheme, cred, ok := strings.Cut(authorization, " ")
	if !ok {
		return ""
	}
	switch strings.ToLower(scheme) {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return ""
		}
		user, _, _ := strings.Cut(string(raw), ":")
		return user
	case "bearer":
		parts := strings.Split(cred, ".")
		if len(parts) != 3 {
			return ""
		}
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return ""
		}
		var claims struct {
			Sub string `json:"sub"`
		}
		if json.Unmarshal(raw, &claims) != nil || claims.Sub == "" {
			return ""
		}
		return claims.Sub + " (token)"
	}
	return ""
}
