// A self-signed certificate for localhost and 127.0.0.1 (EC P-256, valid until 2126), for HTTPS
// receivers in tests. Made for the tests alone, with
// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1`:
// nothing outside the tests trusts it.

export const TEST_TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgc0+PCSwSSB1iq6CJ
eqm7WyuPQ8yDm48mQJRzq9wzqRqhRANCAASgvIAEXiPPBn+lCdrFog89wieq8sig
OsrCCa1q6EUvUbPDSVLDUt5SqNKPGf2xfwxDtbEPmbnFJJFLU14MLY06
-----END PRIVATE KEY-----
`;

export const TEST_TLS_CERT = `-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUDs6g+mhjAY3yba+Sfxw1RvOkehYwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMzIyMzgyMVoYDzIxMjYxMTA5
MjIzODIxWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASgvIAEXiPPBn+lCdrFog89wieq8sigOsrCCa1q6EUvUbPDSVLDUt5S
qNKPGf2xfwxDtbEPmbnFJJFLU14MLY06o28wbTAdBgNVHQ4EFgQU5NrBBmlObbwZ
iceRDxLL04/w3vswHwYDVR0jBBgwFoAU5NrBBmlObbwZiceRDxLL04/w3vswDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDSAAwRQIhAMbeSN9QdmWb3QVh+KUooaNlBZ65vaASPVvEhCi4PIJSAiAw
Ls16JZhlUYmECpgvMSncGgFlcfEZ2YpdYBGuMt8fkg==
-----END CERTIFICATE-----
`;
