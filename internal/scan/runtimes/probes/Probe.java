// imagegate's Java parts probe: checks the parts named on the command line
// one by one in this JVM and reports each result as one JSON line on the
// original stdout, flushed, so that a crash or a hang loses only the part at
// fault. Compiled with --release 8 (scripts/gen-runtime-lists) so that one
// class runs on Java 8 to the newest; the module API (9+) is reached by
// reflection.
//
// argv: TIMEOUT_MS PART... where PART is "module:NAME" (found in the runtime
// image, its configuration resolved, one of its classes loaded), "ec" (an EC
// key pair, ECDH and a TLS client hello), "trust" (the default trust store
// loaded and non-empty as PKIX needs it) or "tool:NAME" (a JDK tool run in
// process with --version).
// Lines: {"t":"hello","version":...,"modules":[...]} then per part
// {"t":"start","m":...} and {"t":"ok"|"err"|"timeout","m":...,"e":...}, and
// {"t":"done"} at the end.
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.cert.PKIXParameters;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import javax.crypto.KeyAgreement;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;

// One class, no nested ones: the scan ships it as a single class file. Each
// part runs in a Probe thread of its own, so that one that hangs is left
// behind after its time limit while the next one starts.
public class Probe extends Thread {
    static PrintStream out;

    final String part;
    String detail;
    Throwable error;

    Probe(String part) {
        this.part = part;
        setDaemon(true);
    }

    public void run() {
        try {
            detail = check(part);
        } catch (Throwable e) {
            error = unwrap(e);
        }
    }

    // fail is a verdict worded by the probe itself: a plain Exception,
    // reported as its message alone, whereas the runtime's own exceptions
    // keep their class name.
    static Exception fail(String message) {
        return new Exception(message);
    }

    static void emit(String line) {
        out.println(line);
        out.flush();
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20 || c > 0x7e) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    static Throwable unwrap(Throwable e) {
        while (e instanceof InvocationTargetException && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    static Object call(Object target, Class<?> c, String name, Class<?>[] types, Object... args) throws Throwable {
        try {
            Method m = c.getMethod(name, types);
            return m.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw unwrap(e);
        }
    }

    static Object systemFinder() throws Throwable {
        Class<?> mf = Class.forName("java.lang.module.ModuleFinder");
        return call(null, mf, "ofSystem", new Class<?>[0]);
    }

    static List<String> systemModules() {
        List<String> names = new ArrayList<String>();
        try {
            Class<?> mf = Class.forName("java.lang.module.ModuleFinder");
            Class<?> ref = Class.forName("java.lang.module.ModuleReference");
            Class<?> desc = Class.forName("java.lang.module.ModuleDescriptor");
            Set<?> all = (Set<?>) call(systemFinder(), mf, "findAll", new Class<?>[0]);
            for (Object r : all) {
                Object d = call(r, ref, "descriptor", new Class<?>[0]);
                names.add((String) call(d, desc, "name", new Class<?>[0]));
            }
        } catch (Throwable e) {
            return null; // Java 8: no modules
        }
        Collections.sort(names);
        return names;
    }

    static void module(String name) throws Throwable {
        Class<?> mf = Class.forName("java.lang.module.ModuleFinder");
        Class<?> ref = Class.forName("java.lang.module.ModuleReference");
        Class<?> reader = Class.forName("java.lang.module.ModuleReader");
        Class<?> layerC = Class.forName("java.lang.ModuleLayer");
        Class<?> confC = Class.forName("java.lang.module.Configuration");
        Object finder = systemFinder();
        Optional<?> found = (Optional<?>) call(finder, mf, "find", new Class<?>[] {String.class}, name);
        if (!found.isPresent()) {
            // java.lang.module.FindException's own wording.
            throw fail("java.lang.module.FindException: Module " + name + " not found");
        }
        Object boot = call(null, layerC, "boot", new Class<?>[0]);
        Object conf = call(boot, layerC, "configuration", new Class<?>[0]);
        Object none = call(null, mf, "of", new Class<?>[] {Path[].class}, (Object) new Path[0]);
        call(conf, confC, "resolve", new Class<?>[] {mf, mf, Collection.class}, finder, none, Collections.singleton(name));
        Optional<?> inBoot = (Optional<?>) call(boot, layerC, "findModule", new Class<?>[] {String.class}, name);
        if (!inBoot.isPresent()) {
            return; // resolvable; its classes load only in a layer of its own
        }
        Object r = call(found.get(), ref, "open", new Class<?>[0]);
        String cls = null;
        try {
            Stream<?> list = (Stream<?>) call(r, reader, "list", new Class<?>[0]);
            Iterator<?> it = list.iterator();
            while (it.hasNext()) {
                String entry = (String) it.next();
                if (entry.endsWith(".class") && !entry.endsWith("module-info.class") && entry.indexOf('/') > 0) {
                    cls = entry.substring(0, entry.length() - 6).replace('/', '.');
                    break;
                }
            }
        } finally {
            call(r, reader, "close", new Class<?>[0]);
        }
        if (cls != null) {
            Class<?> mod = Class.forName("java.lang.Module");
            Object m = ((Optional<?>) inBoot).get();
            ClassLoader loader = (ClassLoader) call(m, mod, "getClassLoader", new Class<?>[0]);
            Class.forName(cls, false, loader);
        }
    }

    static void ec() throws Throwable {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(256);
        KeyAgreement ka = KeyAgreement.getInstance("ECDH");
        ka.init(g.generateKeyPair().getPrivate());
        SSLContext c = SSLContext.getInstance("TLS");
        c.init(null, null, null);
        SSLEngine en = c.createSSLEngine("imagegate.invalid", 443);
        en.setUseClientMode(true);
        en.wrap(ByteBuffer.allocate(0), ByteBuffer.allocate(1 << 16));
    }

    static String trust() throws Throwable {
        String p = System.getProperty("javax.net.ssl.trustStore");
        if (p == null) {
            String sec = System.getProperty("java.home") + File.separator + "lib" + File.separator + "security" + File.separator;
            p = new File(sec + "jssecacerts").exists() ? sec + "jssecacerts" : sec + "cacerts";
        }
        KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
        InputStream in = new FileInputStream(p);
        try {
            ks.load(in, null);
        } finally {
            in.close();
        }
        new PKIXParameters(ks); // the exception TLS clients see on an empty store
        return ks.size() + " certificates in " + p;
    }

    static void tool(String name) throws Throwable {
        Class<?> tp;
        try {
            tp = Class.forName("java.util.spi.ToolProvider");
        } catch (ClassNotFoundException e) {
            throw fail("no in-process tools before Java 9");
        }
        Optional<?> t = (Optional<?>) call(null, tp, "findFirst", new Class<?>[] {String.class}, name);
        if (!t.isPresent()) {
            throw fail("no tool provider named " + name + " in this runtime");
        }
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(buf, true);
        int rc = (Integer) call(t.get(), tp, "run", new Class<?>[] {PrintStream.class, PrintStream.class, String[].class}, ps, ps, (Object) new String[] {"--version"});
        if (rc != 0) {
            throw fail(name + " --version: exit status " + rc + ": " + buf.toString().trim());
        }
    }

    static String check(String part) throws Throwable {
        if (part.startsWith("module:")) {
            module(part.substring(7));
            return null;
        }
        if (part.startsWith("tool:")) {
            tool(part.substring(5));
            return null;
        }
        if (part.equals("ec")) {
            ec();
            return null;
        }
        if (part.equals("trust")) {
            return trust();
        }
        throw fail("unknown part " + part);
    }

    public static void main(String[] args) throws Exception {
        out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
        System.setOut(System.err); // what parts print must not mix with the protocol
        long timeout = Long.parseLong(args[0]);
        StringBuilder mods = new StringBuilder();
        List<String> names = systemModules();
        if (names == null) {
            mods.append("null");
        } else {
            mods.append('[');
            for (int i = 0; i < names.size(); i++) {
                mods.append(i > 0 ? "," : "").append(quote(names.get(i)));
            }
            mods.append(']');
        }
        emit("{\"t\":\"hello\",\"version\":" + quote(System.getProperty("java.version")) + ",\"modules\":" + mods + "}");
        for (int i = 1; i < args.length; i++) {
            Probe th = new Probe(args[i]);
            emit("{\"t\":\"start\",\"m\":" + quote(th.part) + "}");
            th.start();
            try {
                th.join(timeout);
            } catch (InterruptedException e) {
                break;
            }
            if (th.isAlive()) {
                emit("{\"t\":\"timeout\",\"m\":" + quote(th.part) + "}");
            } else if (th.error != null) {
                String e = th.error.getClass() == Exception.class ? th.error.getMessage() : String.valueOf(th.error);
                emit("{\"t\":\"err\",\"m\":" + quote(th.part) + ",\"e\":" + quote(e) + "}");
            } else {
                String d = th.detail == null ? "" : ",\"d\":" + quote(th.detail);
                emit("{\"t\":\"ok\",\"m\":" + quote(th.part) + d + "}");
            }
        }
        emit("{\"t\":\"done\"}");
        System.exit(0);
    }
}
