# hello.rb: a handoff handler in Ruby, standard library only, speaking the handler channel of wire protocol
# version 2 itself (docs/protocol.md, "The handler channel"). The reactor has read and parsed each request; this
# answers it on the client's socket and reports back. It claims no capabilities (its hello's flags are 0).
#   build/reactor/handoff --handler-cmd 'ruby handler/examples/hello.rb'
#   curl http://127.0.0.1:8888/a/b                # hello from ruby: GET /a/b
#   printf 'hi there\n' | nc -N 127.0.0.1 8888    # hello from ruby: hi there
require "socket"
require "time"

MAGIC, VERSION = 0x46444e48, 2 # MAGIC: the bytes "HNDF"
HEADER = "L S S Q L L"         # magic, version, type, connection_id, flags, payload_size: 24 bytes, host order
RECORD = "Q S C C L9"          # the request record's fixed part: 48 bytes
PROGRESS = "Q S S L"           # bytes_written, status, route (0: it names none), request_age_ms: 16 bytes
HELLO, CONNECTION, DONE, RECLAIM, FORGET = 1, 2, 3, 5, 10
FLAG_HTTP = 1 << 0             # kConnection: the connection speaks HTTP/1.x
FLAG_KEPT = 1 << 4             # kConnection: no descriptor (only to handlers that said kCanKeep)
DONE_KEEP_OPEN, DONE_WRITE_TIMED_OUT = 1 << 0, 1 << 1 # kDone
RECORD_KEEP_ALIVE = 1 << 0     # the record's flags

Request = Struct.new(:id, :address, :port, :http_minor, :keep_alive, :method, :target, :path, :query,
                     :headers, :body, :rest)

# Frames over the channel; the descriptors a recvmsg brings wait in a queue for the frames that carry one.
class Channel
  def initialize(socket)
    @socket, @buffer, @descriptors = socket, "".b, []
  end

  def send_frame(type, connection_id, flags, payload = "")
    @socket.write([MAGIC, VERSION, type, connection_id, flags, payload.bytesize].pack(HEADER), payload)
  end

  # The next frame as [type, connection_id, flags, payload, descriptor or nil]; nil once the reactor closed.
  def receive
    until (frame = take_frame)
      data, _, rflags, *controls = @socket.recvmsg(1 << 16, 0, 512, scm_rights: true) # MSG_CMSG_CLOEXEC too
      return nil if data.empty? && @buffer.empty?
      raise "the channel closed in the middle of a frame" if data.empty?
      raise "descriptors lost (MSG_CTRUNC)" if rflags & Socket::MSG_CTRUNC != 0
      controls.each { |control| @descriptors.concat(control.unix_rights) if control.cmsg_is?(:SOCKET, :RIGHTS) }
      @buffer << data
    end
    frame
  end

  def take_frame # The frame at the start of the buffer, if it is all there.
    return nil if @buffer.bytesize < 24
    magic, version, type, connection_id, flags, size = @buffer.unpack(HEADER)
    raise "a bad frame: magic #{magic}, version #{version}" if magic != MAGIC || version != VERSION
    return nil if @buffer.bytesize < 24 + size
    payload, @buffer = @buffer.byteslice(24, size), @buffer.byteslice(24 + size..)
    descriptor = @descriptors.shift if type == CONNECTION && (flags & FLAG_KEPT).zero?
    [type, connection_id, flags, payload, descriptor]
  end
end

# A kConnection payload: the fixed part, eight byte strings of the sizes it gives, the fields' pairs in one.
def decode_record(payload)
  id, port, minor, flags, field_count, *sizes = payload.unpack(RECORD)
  at = 48
  address, method, target, path, query, fields, body, rest = sizes.map { |n| payload.byteslice(at, n).tap { at += n } }
  raise "a request record whose sizes do not add up" if at != payload.bytesize
  headers = Array.new(field_count) do
    name_size, value_size = fields.unpack("L L")
    name, value = fields.byteslice(8, name_size), fields.byteslice(8 + name_size, value_size)
    fields = fields.byteslice(8 + name_size + value_size..)
    [name, value]
  end
  Request.new(id, address, port, minor, (flags & RECORD_KEEP_ALIVE) != 0, method, target, path, query, headers,
              body, rest)
end

# The bytes of the answer, and its status.
def answer(request, http)
  # One line per answer: a CR or NUL inside the line (the reactor cut it at its LF) becomes a space.
  return ["hello from ruby: #{request.target.tr("\r\0", '  ')}\n", 200] unless http
  allowed = %w[GET HEAD POST].include?(request.method) # The others get 405, as both libraries answer them.
  status, reason = allowed ? [200, "OK"] : [405, "Method Not Allowed"]
  body = allowed ? "hello from ruby: #{request.method} #{request.path}\n" : "method not allowed\n"
  head = "HTTP/1.1 #{status} #{reason}\r\nDate: #{Time.now.httpdate}\r\n"
  head << "Allow: GET, HEAD, POST\r\n" unless allowed
  head << "Content-Type: text/plain; charset=utf-8\r\nContent-Length: #{body.bytesize}\r\n"
  head << "Connection: close\r\n" unless request.keep_alive
  head << "Connection: keep-alive\r\n" if request.keep_alive && request.http_minor.zero?
  [head + "\r\n" + (request.method == "HEAD" ? "" : body), status]
end

# Writes to the client's socket (non-blocking); [bytes written, :ok, :timed_out or :gone].
def write_all(client, bytes, timeout)
  written = 0
  while written < bytes.bytesize
    n = client.write_nonblock(bytes.byteslice(written..), exception: false)
    if n == :wait_writable # The clock starts over whenever some bytes went out.
      return [written, :timed_out] unless IO.select(nil, [client], nil, timeout)
    else
      written += n
    end
  end
  [written, :ok]
rescue Errno::EPIPE, Errno::ECONNRESET
  [written, :gone]
end

channel_fd = ENV["HANDOFF_IPC_FD"] or abort "hello.rb: a handoff handler; the reactor starts it (--handler-cmd)"
%w[INT TERM HUP USR2].each { |signal| trap(signal, "IGNORE") } # The reactor ends it: it closes the channel.
write_timeout = Integer(ENV.fetch("HANDOFF_WRITE_TIMEOUT_MS", "5000")) / 1000.0
channel = Channel.new(Socket.for_fd(Integer(channel_fd)).tap { |socket| socket.close_on_exec = true })
channel.send_frame(HELLO, 0, 0)
while (frame = channel.receive)
  type, connection_id, flags, payload, client = frame
  next if [RECLAIM, FORGET].include?(type) # Both concern capabilities this handler did not claim.
  raise "unexpected frame type #{type}" unless type == CONNECTION
  raise "a kConnection frame without its descriptor" unless client
  request = decode_record(payload)
  bytes, status = answer(request, (flags & FLAG_HTTP) != 0)
  written, outcome = write_all(client, bytes, write_timeout)
  client.close # Before kDone: from then on the reactor decides what becomes of the connection.
  done_flags = (outcome == :ok && request.keep_alive ? DONE_KEEP_OPEN : 0) |
               (outcome == :timed_out ? DONE_WRITE_TIMED_OUT : 0)
  channel.send_frame(DONE, connection_id, done_flags, [written, status, 0, 0].pack(PROGRESS) + request.rest)
end
exit 0 # The reactor closed the channel.
