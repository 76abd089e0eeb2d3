// JarPackages prints, for each file named on the command line, the Maven
// artifacts (from META-INF/maven/**/pom.properties) that the JDK's own zip
// reader finds in it and in archives nested in it, one line per file:
// "group:artifact version" entries sorted and joined by ";", or "ERROR" when
// java.util.zip.ZipFile refuses the file or a nested archive. A nested entry
// is opened as an archive when its name ends in .jar or its content starts
// with a zip local header, as an application server extracting it would.
// Run by the inventory package's tests (java JarPackages.java FILE...).
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.List;
import java.util.Properties;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

public class JarPackages {
    public static void main(String[] args) {
        for (String a : args) {
            List<String> out = new ArrayList<>();
            try {
                walk(Path.of(a), out, 0);
                Collections.sort(out);
                System.out.println(String.join(";", out));
            } catch (Exception e) {
                System.out.println("ERROR");
            }
        }
    }

    static void walk(Path p, List<String> out, int depth) throws IOException {
        try (ZipFile z = new ZipFile(p.toFile())) {
            for (Enumeration<? extends ZipEntry> en = z.entries(); en.hasMoreElements();) {
                ZipEntry e = en.nextElement();
                String n = e.getName();
                if (e.isDirectory()) {
                    continue;
                }
                if (n.startsWith("META-INF/maven/") && n.endsWith("/pom.properties")) {
                    Properties pr = new Properties();
                    try (InputStream in = z.getInputStream(e)) {
                        pr.load(in);
                    }
                    out.add(pr.getProperty("groupId") + ":" + pr.getProperty("artifactId") + " " + pr.getProperty("version"));
                    continue;
                }
                if (depth >= 3) {
                    continue;
                }
                byte[] b;
                try (InputStream in = z.getInputStream(e)) {
                    b = in.readAllBytes();
                }
                boolean zip = b.length >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4;
                if (zip || n.endsWith(".jar")) {
                    Path t = Files.createTempFile("nested", ".jar");
                    try {
                        Files.write(t, b);
                        walk(t, out, depth + 1);
                    } finally {
                        Files.delete(t);
                    }
                }
            }
        }
    }
}
