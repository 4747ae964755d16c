// Bastion console: the little the pages need from JavaScript (no token is ever here).
"use strict";

// One-time links carry their token in the URL fragment, which browsers never send to a
// server: copy it into the form, then take it out of the address bar and history.
function fillFromFragment() {
  const field = document.querySelector("[data-from-fragment]");
  const token = decodeURIComponent(window.location.hash.slice(1));
  if (!field || !token) return;
  field.value = token;
  history.replaceState(null, "", window.location.pathname);
  const wrapper = field.closest("[data-fragment-field]");
  if (wrapper) wrapper.hidden = true;
}

// Copy buttons: data-copy names the element whose text is copied.
function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const text = source.tagName === "UL"
        ? Array.from(source.querySelectorAll("li")).map((li) => li.textContent.trim()).join("\n")
        : source.textContent.trim();
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  fillFromFragment();
  copyButtons();
});
