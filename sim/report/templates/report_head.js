window.__reportErrors=[];
window.addEventListener('error',function(e){window.__reportErrors.push(String(e.message||('failed to load '+((e.target&&(e.target.src||e.target.href))||e.type))));},true);
document.addEventListener('securitypolicyviolation',function(e){window.__reportErrors.push('blocked '+e.blockedURI+' by '+e.violatedDirective);});
(function(){var orig=console.error;console.error=function(){window.__reportErrors.push(Array.prototype.join.call(arguments,' '));return orig.apply(console,arguments);};})();
