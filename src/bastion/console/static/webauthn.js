// Bastion console: WebAuthn ceremonies (security keys and passkeys).
//
// A form marked data-webauthn="register | sign-in | step-up | passkey" is not posted as
// typed: this script asks the console for the options (POST /console/webauthn/options,
// which asks the API), lets the browser talk to the authenticator, puts the answer
// (PublicKeyCredential JSON) into the form's "credential" field and posts the form.
// The page holds no token: the console's session does the API calls.
"use strict";

const b64url = {
  decode(text) {
    const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  },
  encode(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

function creationOptions(json) {
  if (PublicKeyCredential.parseCreationOptionsFromJSON) {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: b64url.decode(json.challenge),
    user: { ...json.user, id: b64url.decode(json.user.id) },
    excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: b64url.decode(c.id) })),
  };
}

function requestOptions(json) {
  if (PublicKeyCredential.parseRequestOptionsFromJSON) {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: b64url.decode(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: b64url.decode(c.id) })),
  };
}

function credentialJSON(credential) {
  if (typeof credential.toJSON === "function") return credential.toJSON();
  const response = credential.response;
  const json = {
    id: credential.id,
    rawId: b64url.encode(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
    response: { clientDataJSON: b64url.encode(response.clientDataJSON) },
  };
  if (response.attestationObject) {
    json.response.attestationObject = b64url.encode(response.attestationObject);
    json.response.transports = response.getTransports ? response.getTransports() : [];
  } else {
    json.response.authenticatorData = b64url.encode(response.authenticatorData);
    json.response.signature = b64url.encode(response.signature);
    if (response.userHandle) json.response.userHandle = b64url.encode(response.userHandle);
  }
  return json;
}

async function fetchOptions(form, purpose) {
  const answer = await fetch("/console/webauthn/options", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ csrf: form.elements.csrf.value, purpose }),
  });
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.error || "The server refused.");
  return body;
}

function say(form, message) {
  const status = form.parentElement.querySelector("[data-webauthn-status]");
  if (status) status.textContent = message;
}

async function ceremony(form, purpose, mediation, signal) {
  const found = await fetchOptions(form, purpose);
  let credential;
  if (purpose === "register") {
    credential = await navigator.credentials.create({ publicKey: creationOptions(found.options) });
  } else {
    const request = { publicKey: requestOptions(found.options) };
    if (mediation) request.mediation = mediation;
    if (signal) request.signal = signal;
    credential = await navigator.credentials.get(request);
  }
  if (!credential) throw new Error("No security key answered.");
  form.elements.credential.value = JSON.stringify(credentialJSON(credential));
  if (form.elements.transaction_id && found.transaction_id) {
    form.elements.transaction_id.value = found.transaction_id;
  }
  form.submit();
}

let conditional = null; // the pending autofill request of the sign-in page

function wire(form) {
  const purpose = form.dataset.webauthn;
  form.addEventListener("submit", async (event) => {
    if (form.elements.credential.value) return;
    event.preventDefault();
    if (conditional) conditional.abort();
    say(form, "Waiting for your security key…");
    try {
      await ceremony(form, purpose);
    } catch (error) {
      say(form, error.name === "NotAllowedError" ? "Cancelled or timed out. Try again." : error.message);
    }
  });
  // Passkey autofill: the username field offers the passkeys of this site (conditional UI).
  if (form.hasAttribute("data-conditional") && window.PublicKeyCredential &&
      PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then((available) => {
      if (!available) return;
      conditional = new AbortController();
      ceremony(form, purpose, "conditional", conditional.signal).catch(() => {});
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  if (!window.PublicKeyCredential) return;
  for (const form of document.querySelectorAll("form[data-webauthn]")) wire(form);
});
