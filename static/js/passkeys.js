// After a passkey is registered (django-otp-webauthn's register_complete event),
// go back to the overview, which lists it.
document.addEventListener("otp_webauthn.register_complete", (event) => {
  const button = event.target.closest("[data-done-url]");
  if (button) {
    window.location.assign(button.dataset.doneUrl);
  }
});
