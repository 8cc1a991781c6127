// The one-click login link: /hub/join#<token>. The token rides in the fragment, which the
// browser never sends anywhere; this page posts it once and takes it out of the address bar.
(function () {
  var token = window.location.hash.slice(1);
  var form = document.getElementById("join");
  if (!token || !form) return;
  history.replaceState(null, "", window.location.pathname);
  form.elements.token.value = token;
  form.submit();
})();
