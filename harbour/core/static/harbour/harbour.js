// Copy buttons: <button data-copy="#element-id">.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var source = document.querySelector(button.getAttribute("data-copy"));
  if (!source) return;
  var text = source.value !== undefined ? source.value : source.textContent;
  navigator.clipboard.writeText(text.trim()).then(function () {
    button.setAttribute("data-copied", "true");
    var done = button.getAttribute("data-copied-label");
    if (done) button.textContent = done;
  });
});
// Forms with data-confirm ask before submitting (e.g. replacing the inbound key).
document.addEventListener("submit", function (event) {
  var submitter = event.submitter;
  var message = (submitter && submitter.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
  if (!message) return;
  if (!window.confirm(message)) { event.preventDefault(); return; }
  // Tell the server the person confirmed (it asks on its own page when this stays empty, e.g. without JavaScript).
  event.target.querySelectorAll("[data-confirmed-value]").forEach(function (input) {
    input.value = input.getAttribute("data-confirmed-value");
  });
});
// A freshly generated key takes the focus so screen readers announce it.
document.addEventListener("DOMContentLoaded", function () {
  var fresh = document.getElementById("new-key");
  if (fresh) fresh.focus();
});
// Prevent double submits: disable the clicked button once the form is on its way.
document.addEventListener("submit", function (event) {
  if (event.defaultPrevented) return;
  var submitter = event.submitter;
  if (submitter && !submitter.hasAttribute("data-allow-resubmit")) {
    setTimeout(function () { submitter.disabled = true; }, 0);
  }
});
