// IndexMem — server tests. Apache-2.0.
//
// A server runs inside the test process on a free loopback port; requests go over real
// sockets with a small HTTP/1.1 client written on POSIX calls, so tests can also send
// what no HTTP library would (truncated bodies, garbage, huge headers) and hang up midway.
//
// Swift's cooperative pool has one thread per core (two here). A test that blocks one in
// `recv` while the server's handlers wait for the other deadlocks the process, and other
// suites' long computations would starve the handlers. So blocking client calls run on
// threads of their own (`offPool`), and the server runs on an executor of its own.

import Foundation
import IndexMem
import IndexMemServer
import IndexMemTestSupport
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Shared model

enum SharedEngine {
    static let loaded: Result<Engine, any Error> = Result { try Engine(path: try requireDefaultModel(), threads: 2) }
    static func get() throws -> Engine { try loaded.get() }
}

// MARK: - Threads outside the cooperative pool

/// Runs blocking work (socket calls, a child process) on a thread of its own.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// A task executor on its own threads: the in-process servers' handlers run here, so they
/// answer whatever the test functions do with the cooperative pool.
final class ServerExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = ServerExecutor(threads: 2)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    init(threads: Int) {
        for i in 0..<threads {
            let thread = Thread { [self] in work() }
            thread.name = "test-server-executor-\(i)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.lock()
        jobs.append(unowned)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

// MARK: - Server in process

/// A running `InferenceServer` on 127.0.0.1 and a free port.
final class RunningServer: Sendable {
    let server: InferenceServer
    let port: Int
    private let task: Task<Void, any Error>

    private init(server: InferenceServer, port: Int, task: Task<Void, any Error>) {
        self.server = server
        self.port = port
        self.task = task
    }

    static func start(_ configure: (inout ServerOptions) -> Void = { _ in }) async throws -> RunningServer {
        var options = ServerOptions()
        options.port = 0
        options.shutdownGraceSeconds = 0
        configure(&options)
        let server = try InferenceServer(engine: try SharedEngine.get(), options: options)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "indexmem.test")
        logger.logLevel = .warning
        // Child tasks (the listener, each connection) inherit the executor preference.
        let task = Task(executorPreference: ServerExecutor.shared) {
            try await server.run(gracefulShutdownSignals: [], logger: logger) { port in continuation.yield(port) }
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TestFailure("the server did not start") }
        return RunningServer(server: server, port: port, task: task)
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }

    /// One request on a new connection.
    func request(_ method: String, _ path: String, json: Any? = nil, body: String? = nil, contentType: String? = "application/json",
                 timeout: Double = 600) async throws -> HTTPTestResponse {
        var payload = Data()
        if let json { payload = try JSONSerialization.data(withJSONObject: json) } else if let body { payload = Data(body.utf8) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let contentType, method != "GET" { head += "Content-Type: \(contentType)\r\n" }
        if method != "GET" { head += "Content-Length: \(payload.count)\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + Array(payload), port = self.port
        return try await offPool { try HTTPTestClient.exchange(port: port, bytes: bytes, timeout: timeout) }
    }

    /// The metrics as name (with labels) -> value.
    func metrics() async throws -> [String: Double] {
        let r = try await request("GET", "/metrics")
        var out: [String: Double] = [:]
        for line in r.text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let v = Double(parts[1]) { out[String(parts[0])] = v }
        }
        return out
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

// MARK: - Raw HTTP client

struct HTTPTestResponse {
    var status: Int
    var headers: [String: String]
    var body: Data
    var text: String { String(decoding: body, as: UTF8.self) }
    func json() throws -> [String: Any] {
        guard let o = try JSONSerialization.jsonObject(with: body) as? [String: Any] else { throw TestFailure("not a JSON object: \(text)") }
        return o
    }
    /// The `data:` payloads of a server-sent-events body.
    var events: [String] {
        text.components(separatedBy: "\n\n").compactMap { block in
            block.hasPrefix("data: ") ? String(block.dropFirst(6)) : nil
        }
    }
}

enum HTTPTestClient {
    /// Opens a TCP connection to 127.0.0.1:`port`.
    static func connect(port: Int, timeout: Double) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0 else { close(fd); throw TestFailure("connect to port \(port) failed") }
        return fd
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }  // the server may close early (e.g. 413); the reply is still readable
            sent += n
        }
    }

    /// Reads until the server closes the connection (or the timeout).
    static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return out
    }

    /// The same off the cooperative pool.
    static func exchangeOffPool(port: Int, bytes: [UInt8], halfClose: Bool = false, timeout: Double = 600) async throws -> HTTPTestResponse {
        try await offPool { try exchange(port: port, bytes: bytes, halfClose: halfClose, timeout: timeout) }
    }

    /// Sends `bytes`, optionally closes the sending side, and parses the reply.
    static func exchange(port: Int, bytes: [UInt8], halfClose: Bool = false, timeout: Double = 600) throws -> HTTPTestResponse {
        let fd = try connect(port: port, timeout: timeout)
        defer { close(fd) }
        send(fd, bytes)
        if halfClose { shutdown(fd, Int32(SHUT_WR)) }
        return try parse(readAll(fd))
    }

    static func parse(_ raw: [UInt8]) throws -> HTTPTestResponse {
        guard let split = raw.firstRange(of: Array("\r\n\r\n".utf8)) else {
            throw TestFailure("no HTTP response (\(raw.count) bytes: \(String(decoding: raw.prefix(200), as: UTF8.self)))")
        }
        let head = String(decoding: raw[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw TestFailure("bad status line \(head[0])") }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        var body = Array(raw[split.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return HTTPTestResponse(status: status, headers: headers, body: Data(body))
    }

    static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            guard let lineEnd = bytes[i...].firstRange(of: Array("\r\n".utf8)) else { break }
            let sizeText = String(decoding: bytes[i..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
            let start = lineEnd.upperBound
            out += bytes[start..<min(start + size, bytes.count)]
            i = start + size + 2
        }
        return out
    }
}

// MARK: - Sessions as the scheduler runs them

/// Prepares `session` for `prompt` and feeds it chunk by chunk, as the scheduler does;
/// `afterChunk` runs after each chunk.
func prefillInChunks(_ session: Session, _ prompt: [Int], chunk: Int, afterChunk: () -> Void = {}) throws {
    session.prepare(contextTokens: prompt.count)
    var fed = 0
    while fed < prompt.count {
        let n = min(chunk, prompt.count - fed)
        try session.feed(Array(prompt[fed..<(fed + n)]))
        fed += n
        afterChunk()
    }
}

// MARK: - Polling

/// Polls `condition` until it holds or `seconds` pass.
func eventually(_ seconds: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(nanoseconds: 50_000_000)
    }
    return try await condition()
}

/// Runs `body` against a fresh server and stops the server afterwards, whatever happens.
func withServer(configure: (inout ServerOptions) -> Void = { _ in }, _ body: (RunningServer) async throws -> Void) async throws {
    let server = try await RunningServer.start(configure)
    do {
        try await body(server)
    } catch {
        await server.stop()
        throw error
    }
    await server.stop()
}
