// Coffer operations console: security-key ceremonies and actions. Served locally; no CDN.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const say = (text, bad) => {
    const box = $("console-message");
    if (box) { box.textContent = text; box.className = bad ? "error" : "notice"; }
  };
  const csrf = () => { const nav = $("console"); return nav ? nav.dataset.csrf : ""; };
  const toBytes = (b64url) => {
    const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64url.length + 3) % 4);
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  };
  const toB64url = (buffer) => {
    let text = "";
    new Uint8Array(buffer).forEach((b) => { text += String.fromCharCode(b); });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  async function api(path, body) {
    const response = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) { throw new Error(data.detail ? JSON.stringify(data.detail) : response.statusText); }
    return data;
  }
  function requestOptions(options) {
    return {
      challenge: toBytes(options.challenge), rpId: options.rpId, timeout: options.timeout,
      userVerification: options.userVerification,
      allowCredentials: (options.allowCredentials || []).map((c) => ({ type: c.type, id: toBytes(c.id) })),
    };
  }
  async function assert(options) {
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    return {
      id: toB64url(credential.rawId),
      response: {
        clientDataJSON: toB64url(credential.response.clientDataJSON),
        authenticatorData: toB64url(credential.response.authenticatorData),
        signature: toB64url(credential.response.signature),
      },
    };
  }
  let enrolment = null;
  async function enrolStart() {
    enrolment = await api("/api/v1/console/webauthn/register/options", { operator_id: $("operator_id").value });
    $("enrol-message").textContent = enrolment.enrol_message;
    say("Sign the enrolment message with your operator key, paste the signature, then register.");
  }
  async function enrolFinish() {
    const o = enrolment.options;
    const credential = await navigator.credentials.create({ publicKey: {
      challenge: toBytes(o.challenge), rp: o.rp, timeout: o.timeout, attestation: o.attestation,
      user: { id: toBytes(o.user.id), name: o.user.name, displayName: o.user.displayName },
      pubKeyCredParams: o.pubKeyCredParams, authenticatorSelection: o.authenticatorSelection,
      excludeCredentials: [],
    } });
    await api("/api/v1/console/webauthn/register", {
      ceremony: enrolment.ceremony, id: toB64url(credential.rawId),
      response: { clientDataJSON: toB64url(credential.response.clientDataJSON),
                  attestationObject: toB64url(credential.response.attestationObject) },
      ed25519_signature: $("ed25519_signature").value.trim(),
    });
    say("Security key registered. You can sign in now.");
  }
  async function signIn() {
    const start = await api("/api/v1/console/webauthn/signin/options", { operator_id: $("operator_id").value });
    const answer = await assert(start.options);
    await api("/api/v1/console/webauthn/signin", Object.assign({ ceremony: start.ceremony }, answer));
    window.location.assign("/console");
  }
  async function approve(digest) {
    const start = await api(`/api/v1/console/approvals/${digest}/challenge`);
    const answer = await assert(start.options);
    const result = await api(`/api/v1/console/approvals/${digest}/approve`,
                             Object.assign({ ceremony: start.ceremony }, answer));
    say(`Approved as ${start.role}: decision ${result.decision.allowed ? "allowed" : "waiting"} (${result.decision.reasons.join(", ")})`);
    setTimeout(() => window.location.reload(), 300);
  }
  async function reject(digest) {
    const reason = window.prompt("Why reject this request?");
    if (!reason) { return; }
    await api(`/api/v1/console/approvals/${digest}/reject`, { reason: reason });
    window.location.reload();
  }
  async function trip() {
    await api("/api/v1/console/halt", { reason: $("trip-reason").value });
    window.location.reload();
  }
  async function resumeMessage() {
    const box = $("resume");
    const query = new URLSearchParams({ halt_id: box.dataset.haltId, reason: $("resume-reason").value });
    const response = await fetch(`/api/v1/console/halt/resume-message?${query}`, { credentials: "same-origin" });
    $("resume-message").textContent = (await response.json()).message;
  }
  async function resume() {
    const signatures = $("resume-signatures").value.split("\n").map((l) => l.trim()).filter(Boolean)
      .map((l) => { const [officer, signature] = l.split(/\s+/); return { officer_id: officer, signature: signature }; });
    await api("/api/v1/console/halt/resume", {
      halt_id: $("resume").dataset.haltId, reason: $("resume-reason").value, signatures: signatures });
    window.location.reload();
  }
  async function signOut() {
    await api("/api/v1/console/signout");
    window.location.assign("/console/signin");
  }
  const guarded = (action) => (event) => { action(event).catch((error) => say(String(error.message || error), true)); };
  const bind = (id, action) => { const el = $(id); if (el) { el.addEventListener("click", guarded(action)); } };
  bind("signin-key", signIn);
  bind("enrol-start", enrolStart);
  bind("enrol-finish", enrolFinish);
  bind("trip-button", trip);
  bind("resume-message-button", resumeMessage);
  bind("resume-button", resume);
  bind("console-signout", signOut);
  document.querySelectorAll("button.approve").forEach((b) => b.addEventListener("click", guarded(() => approve(b.dataset.digest))));
  document.querySelectorAll("button.reject").forEach((b) => b.addEventListener("click", guarded(() => reject(b.dataset.digest))));
})();
