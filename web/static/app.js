// Pages that show a running upload refresh themselves until it ends.
document.addEventListener("DOMContentLoaded", function () {
  var secs = Number(document.body.dataset.refresh || 0);
  if (secs > 0) {
    setTimeout(function () { window.location.reload(); }, secs * 1000);
  }
});
