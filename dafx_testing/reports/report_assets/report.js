// dafx report: inlined into every page. Filters the instance list as you type.
(function () {
  var box = document.getElementById("instance-filter");
  if (!box) { return; }
  box.addEventListener("input", function () {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    document.querySelectorAll("[data-search]").forEach(function (node) {
      var text = node.getAttribute("data-search");
      var shown = words.every(function (word) { return text.indexOf(word) >= 0; });
      node.hidden = !shown;
    });
  });
})();
