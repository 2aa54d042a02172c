// Coffer public proof-of-reserves page: sends a pasted proof to the verifier endpoint. Local only.
"use strict";
(function () {
  const button = document.getElementById("verify-proof");
  if (!button) { return; }
  const out = document.getElementById("inclusion-result");
  button.addEventListener("click", async () => {
    out.className = ""; out.textContent = "checking…";
    try {
      const response = await fetch("/api/v1/public/por/verify", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ proof: document.getElementById("proof").value,
                               account_nonce: document.getElementById("account_nonce").value.trim().toLowerCase() }),
      });
      const result = await response.json();
      if (response.ok && result.ok) {
        out.className = "notice";
        out.textContent = `Included: account ${result.account_number} holds ${result.balance_text} at height ${result.height}; all client liabilities sum to ${result.total_text}.`;
      } else {
        out.className = "error";
        out.textContent = result.reason ? `Not verified (${result.check}): ${result.reason}` : `Refused: ${JSON.stringify(result.detail || result)}`;
      }
    } catch (error) {
      out.className = "error"; out.textContent = String(error);
    }
  });
})();
