# imagegate's Perl parts probe: requires the modules named on the command
# line one by one in this interpreter and reports each as one JSON line on
# stdout, flushed, so that a crash or a hang loses only the part at fault.
# It needs nothing but the interpreter's core (no JSON module).
#
# argv: TIMEOUT_MS PART... where PART is "module:Foo::Bar" (require'd).
# Lines: {"t":"hello","version":...} then per part {"t":"start","m":...}
# and {"t":"ok"|"err"|"timeout","m":...,"e":...}, and {"t":"done"}.
open(my $out, ">&", \*STDOUT) or die "dup stdout: $!";
open(STDOUT, ">&", \*STDERR) or die "stdout to stderr: $!"; # what modules print must not mix with the protocol
select((select($out), $| = 1)[0]);
sub jstr { my $s = shift; $s = "" unless defined $s; $s =~ s/(["\\])/\\$1/g; $s =~ s/([\x00-\x1f\x7f-\xff])/sprintf("\\u%04x", ord($1) < 0x80 ? ord($1) : 0xfffd)/ge; return "\"$s\"" }
my $limit = shift(@ARGV) / 1000;
printf $out "{\"t\":\"hello\",\"version\":%s}\n", jstr(sprintf("%vd", $^V));
for my $part (@ARGV) {
  print $out "{\"t\":\"start\",\"m\":" . jstr($part) . "}\n";
  my ($kind, $name) = split(/:/, $part, 2);
  my $ok = eval {
    die "unknown part $part\n" unless $kind eq "module";
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm($limit > 1 ? int($limit) : 1);
    (my $file = "$name.pm") =~ s{::}{/}g;
    # A module another one required and that failed then is marked so;
    # load it again for its own error, not "Attempt to reload".
    delete $INC{$file} if exists $INC{$file} && !defined $INC{$file};
    require $file;
    alarm(0);
    1;
  };
  alarm(0);
  if ($ok) {
    print $out "{\"t\":\"ok\",\"m\":" . jstr($part) . "}\n";
  } elsif ($@ eq "timeout\n") {
    print $out "{\"t\":\"timeout\",\"m\":" . jstr($part) . "}\n";
  } else {
    my ($first) = split(/\n/, $@);
    print $out "{\"t\":\"err\",\"m\":" . jstr($part) . ",\"e\":" . jstr($first) . "}\n";
  }
}
print $out "{\"t\":\"done\"}\n";
POSIX::_exit(0) if defined &POSIX::_exit;
exit(0);
