// DynamoDB Local on 127.0.0.1 only: the launcher siyu/local/dynamodb.py runs
// (`java -cp DynamoDBLocal.jar LoopbackDynamoDB.java ...`, Java's single-file source mode).
//
// DynamoDB Local's own main (ServerRunner) listens on every interface and has no option for
// the address. This builds the same two handlers ServerRunner.createServer builds, and serves
// them from a Jetty connector bound to 127.0.0.1 (docs/local-stack.md, "Why a launcher").
// It also:
//   - takes port 0 and writes the port it got to --port-file, so callers never race for a port;
//   - never starts DynamoDB Local's telemetry (ServerRunner's path is the only one that does);
//   - exits when its standard input closes: the process that started it died, even by
//     kill -9, and no Java process is left behind.
//
// Arguments: --port N (0: any free port), --port-file FILE, then --in-memory or --db-path DIR.

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.ContextHandler;
import software.amazon.dynamodb.services.local.server.LocalDynamoDBRequestHandler;
import software.amazon.dynamodb.services.local.server.LocalDynamoDBServerHandler;

public final class LoopbackDynamoDB {
    public static void main(String[] args) throws Exception {
        int port = 0;
        boolean inMemory = false;
        String dbPath = null;
        Path portFile = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--port" -> port = Integer.parseInt(args[++i]);
                case "--in-memory" -> inMemory = true;
                case "--db-path" -> dbPath = args[++i];
                case "--port-file" -> portFile = Path.of(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (inMemory == (dbPath != null) || portFile == null) {
            throw new IllegalArgumentException("give --port-file FILE and one of --in-memory and --db-path DIR");
        }
        // (authority level 0, in memory, file location, one database whatever the caller's key
        // and region (-sharedDb), no delayed CREATING/DELETING statuses), the arguments
        // ServerRunner.createServer passes for `-inMemory|-dbPath DIR -sharedDb`.
        var requests = new LocalDynamoDBRequestHandler(0, inMemory, dbPath, true, false);
        var handler = new LocalDynamoDBServerHandler(requests, null);
        var server = new Server();
        var connector = new ServerConnector(server);
        connector.setHost("127.0.0.1");
        connector.setPort(port);
        server.addConnector(connector);
        var context = new ContextHandler();
        context.setHandler(handler);
        server.setHandler(context);
        server.start();
        Path written = Files.writeString(Path.of(portFile + ".tmp"), connector.getLocalPort() + "\n");
        Files.move(written, portFile, StandardCopyOption.ATOMIC_MOVE); // read whole or not at all
        while (System.in.read() != -1) {
            // nothing is ever written to us; EOF means our parent is gone
        }
        server.stop();
        requests.shutdown();
        System.exit(0);
    }
}
