// WebAuthn ceremonies of the console: see webauthn.js history; filled in below.
