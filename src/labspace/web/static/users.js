// The users page: the box in the table's head ticks or clears every account on the page.
(function () {
  var all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll('input[name="names"][form="bulk"]').forEach(function (box) {
      if (!box.disabled) box.checked = all.checked;
    });
  });
})();
