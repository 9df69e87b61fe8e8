// IndexMem — server. Apache-2.0.
//
// A request's events and its client's hang-up, watched for as long as the request lives.
// The watch is a task of its own rather than a scope around the handler, because a stream's
// handler returns its 200 (after admission) long before the answer is written, and a client
// that leaves while queued, prefilling or decoding must free its place at once.

import Hummingbird

/// Calls `onHangUp` if the client closes its side before `finish()`.
final class HangUpWatch: Sendable {
    private let done: AsyncStream<Void>.Continuation
    private let task: Task<Void, Never>

    init(_ request: Request, onHangUp: @escaping @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        done = continuation
        task = Task {
            _ = try? await request.body.consumeWithInboundCloseHandler { _ in
                for await _ in stream {}
            } onInboundClosed: {
                onHangUp()
            }
        }
    }

    /// The answer is written (or failed): stop watching, and return only once the watch has
    /// stopped reading the connection. Hummingbird reads the next request of a keep-alive
    /// connection from the same stream after the handler, and two readers at once trap.
    func finish() async {
        done.finish()
        await task.value
    }
}

/// The scheduler's events for one request, read first by the handler (admission) and then by
/// the response writer. One iterator for both: dropping an `AsyncStream` iterator ends the
/// stream, which would cancel the request.
final class EventIterator: @unchecked Sendable {
    // Used by one task at a time: the handler, then the body writer it hands over to.
    private var iterator: AsyncStream<JobEvent>.AsyncIterator

    init(_ stream: AsyncStream<JobEvent>) { iterator = stream.makeAsyncIterator() }

    func next() async -> JobEvent? { await iterator.next() }
}
