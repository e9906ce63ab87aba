(function(){
var figs=document.querySelectorAll('figure.chart'),ok=0;
figs.forEach(function(f){var s=f.querySelector('svg');if(!s)return;var r=s.getBoundingClientRect();
if(r.width>0&&r.height>0&&s.querySelectorAll('path,line,text,use').length>0){ok++;f.setAttribute('data-rendered','yes');}});
function mark(){var b=document.body;b.setAttribute('data-charts-total',figs.length);b.setAttribute('data-charts-ok',ok);
b.setAttribute('data-js-errors',window.__reportErrors.length);b.setAttribute('data-js-error-text',window.__reportErrors.join(' | ').slice(0,1000));}
mark();window.addEventListener('load',mark);
})();
