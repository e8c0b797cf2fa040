// imagegate's PHP parts probe (run with php -r): confirms, one by one, that
// the extensions the image's ini files ask for were loaded at startup; for
// one that was not, dl() tries it again for PHP's own "Unable to load
// dynamic library" words. Each verdict is one JSON line on stdout, flushed,
// so that a crash or a hang loses only the part at fault.
//
// argv: -- TIMEOUT_MS PART... where PART is "ext:VALUE" or "zend:VALUE",
// VALUE as the ini file wrote it. Lines: {"t":"hello","version":...,
// "modules":[...],"extra":[...]} (loaded extensions and Zend extensions,
// lower case), then per part {"t":"start","m":...} and
// {"t":"ok"|"err","m":...,"e":...}, and {"t":"done"} at the end.
function imagegate_q($s) {
    $s = (string)$s; $r = '"'; $n = strlen($s);
    for ($i = 0; $i < $n; $i++) {
        $c = $s[$i]; $o = ord($c);
        if ($c === '"' || $c === '\\') { $r .= '\\' . $c; }
        elseif ($o < 0x20 || $o >= 0x7f) { $r .= sprintf('\\u%04x', $o < 0x80 ? $o : 0xfffd); }
        else { $r .= $c; }
    }
    return $r . '"';
}
function imagegate_emit($s) { fwrite(STDOUT, $s . "\n"); fflush(STDOUT); }
function imagegate_list($a) { return '[' . implode(',', array_map('imagegate_q', $a)) . ']'; }
$imagegate_loaded = array_map('strtolower', get_loaded_extensions());
$imagegate_zend = array_map('strtolower', get_loaded_extensions(true));
sort($imagegate_loaded);
sort($imagegate_zend);
imagegate_emit('{"t":"hello","version":' . imagegate_q(PHP_VERSION) . ',"modules":' . imagegate_list($imagegate_loaded) . ',"extra":' . imagegate_list($imagegate_zend) . '}');
foreach (array_slice($argv, 2) as $imagegate_part) {
    imagegate_emit('{"t":"start","m":' . imagegate_q($imagegate_part) . '}');
    $imagegate_kv = explode(':', $imagegate_part, 2);
    $imagegate_value = isset($imagegate_kv[1]) ? $imagegate_kv[1] : '';
    $imagegate_name = strtolower(basename($imagegate_value, '.so'));
    $imagegate_ok = false;
    if ($imagegate_kv[0] === 'ext') {
        $imagegate_ok = extension_loaded($imagegate_name);
    } else {
        foreach ($imagegate_zend as $imagegate_z) {
            if (strpos($imagegate_z, $imagegate_name) !== false) { $imagegate_ok = true; }
        }
    }
    if ($imagegate_ok) {
        imagegate_emit('{"t":"ok","m":' . imagegate_q($imagegate_part) . '}');
        continue;
    }
    $imagegate_err = '';
    set_error_handler(function ($no, $str) use (&$imagegate_err) { $imagegate_err = $str; return true; });
    if (strpos($imagegate_value, '/') !== false || !function_exists('dl')) {
        $imagegate_err = 'not loaded at startup (see the startup warnings)';
    } elseif (dl($imagegate_value)) {
        $imagegate_err = 'not loaded at startup; dl() loaded it later';
    }
    restore_error_handler();
    imagegate_emit('{"t":"err","m":' . imagegate_q($imagegate_part) . ',"e":' . imagegate_q($imagegate_err === '' ? 'not loaded' : $imagegate_err) . '}');
}
imagegate_emit('{"t":"done"}');
exit(0);
