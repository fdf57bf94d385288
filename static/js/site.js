// Small enhancements for every page; each page works without them (no inline script,
// so the Content-Security-Policy stays script-src 'self').
(() => {
  "use strict";

  // A form sent back with errors: focus its first invalid field (Django marks it with
  // aria-invalid and points aria-describedby at the error), else the form's alert.
  function focusFirstError() {
    const invalid = document.querySelector('main [aria-invalid="true"]');
    const alert = document.querySelector("main form .alert.error, main .messages .error");
    const target = invalid || alert;
    if (!target) return;
    if (!invalid) target.setAttribute("tabindex", "-1");
    target.focus();
  }

  // A show/hide button after every password field.
  function passwordToggles() {
    const body = document.body;
    const show = body.dataset.showPassword;
    const hide = body.dataset.hidePassword;
    document.querySelectorAll('input[type="password"]').forEach((input) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "password-toggle";
      button.textContent = show;
      button.setAttribute("aria-pressed", "false");
      if (input.id) button.setAttribute("aria-controls", input.id);
      button.addEventListener("click", () => {
        const shown = input.type === "text";
        input.type = shown ? "password" : "text";
        button.textContent = shown ? show : hide;
        button.setAttribute("aria-pressed", shown ? "false" : "true");
      });
      input.insertAdjacentElement("afterend", button);
    });
  }

  // Buttons that only work with script (copy, print) are hidden until now.
  function scriptButtons() {
    document.querySelectorAll("[data-copy-from]").forEach((button) => {
      const source = document.getElementById(button.dataset.copyFrom);
      const status = document.getElementById(button.dataset.status || "");
      button.hidden = !(source && navigator.clipboard);
      button.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(source.dataset.text || source.innerText);
          if (status) status.textContent = button.dataset.done || "";
        } catch (error) {
          if (status) status.textContent = button.dataset.failed || "";
        }
      });
    });
    document.querySelectorAll("[data-print]").forEach((button) => {
      button.hidden = false;
      button.addEventListener("click", () => window.print());
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    passwordToggles();
    scriptButtons();
    focusFirstError();
  });
})();
