# imagegate's Ruby parts probe: requires the extension libraries named on
# the command line one by one in this interpreter and reports each as one
# JSON line on stdout, flushed, so that a crash or a hang loses only the
# part at fault. It needs nothing but the interpreter's core.
#
# argv: TIMEOUT_MS PART... where PART is "module:FEATURE" (require'd).
# Lines: {"t":"hello","version":...,"modules":[...]} then per part
# {"t":"start","m":...} and {"t":"ok"|"err","m":...,"e":...}, and
# {"t":"done"} at the end.
out = IO.new(1, "w")
$stdout = $stderr # what features print must not mix with the protocol
def q(s)
  '"' + s.to_s.encode("UTF-8", invalid: :replace, undef: :replace).gsub(/["\\\x00-\x1f\x7f-\u{10ffff}]/) { |c| c == '"' || c == "\\" ? "\\" + c : format("\\u%04x", c.ord > 0xffff ? 0xfffd : c.ord) } + '"'
end
emit = ->(s) { out.write(s + "\n"); out.flush }
arch = RbConfig::CONFIG["archdir"] rescue nil
found = arch ? Dir.glob(File.join(arch, "**", "*.so")).map { |f| f.delete_prefix(arch + "/").delete_suffix(".so") }.reject { |f| f.start_with?("enc/") }.sort : []
emit.call('{"t":"hello","version":' + q(RUBY_VERSION) + ',"modules":[' + found.map { |f| q(f) }.join(",") + "]}")
ARGV.drop(1).each do |part|
  emit.call('{"t":"start","m":' + q(part) + "}")
  begin
    raise ArgumentError, "unknown part #{part}" unless part.start_with?("module:")
    require part.delete_prefix("module:")
    emit.call('{"t":"ok","m":' + q(part) + "}")
  rescue Exception => e
    emit.call('{"t":"err","m":' + q(part) + ',"e":' + q(e.message.lines.first.to_s.chomp) + "}")
  end
end
emit.call('{"t":"done"}')
exit!(0)
