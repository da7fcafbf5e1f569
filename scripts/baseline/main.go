// Command baseline is the floor that scripts/load.sh holds idtx against:
// an STS that does only what every token exchange must do and nothing
// else. For each POST /token it checks one client's Basic credentials,
// verifies the subject token's RS256 signature and expiry with one known
// key, signs an ES256 token for the requested audience and scope, and
// answers JSON. No IDP routing, no consent, no policy, no audit, no
// metrics.
//
//	go run ./scripts/baseline -listen 127.0.0.1:9999 -pub rsa.pub
//
// The same work as the limitsrv baseline that the project's published
// figures were measured against; load.sh takes that one with
// LIMITSRV=dir.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9999", "address to listen on")
	pubFile := flag.String("pub", "", "PEM public key (SPKI) that signs the subject tokens, RS256")
	flag.Parse()
	data, err := os.ReadFile(*pubFile)
	if err != nil {
		log.Fatal(err)
	}
	verifyKey, err := jwt.ParseRSAPublicKeyFromPEM(data)
	if err != nil {
		log.Fatal(err)
	}
	signKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired())
	keyfunc := func(*jwt.Token) (any, error) { return verifyKey, nil }

	http.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "bench-client" || subtle.ConstantTimeCompare([]byte(pass), []byte("bench-secret")) != 1 {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		subject, err := parser.Parse(r.PostFormValue("subject_token"), keyfunc)
		if err != nil {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		sub, _ := subject.Claims.GetSubject()
		now := time.Now()
		token, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"iss": "http://baseline", "sub": sub, "aud": r.PostFormValue("audience"),
			"client_id": user, "scope": r.PostFormValue("scope"),
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		}).SignedString(signKey)
		if err != nil {
			http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]any{
			"access_token": token, "token_type": "Bearer", "expires_in": 300,
			"issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
			"scope":             r.PostFormValue("scope"),
		})
	})
	log.Fatal(http.ListenAndServe(*listen, nil))
}
