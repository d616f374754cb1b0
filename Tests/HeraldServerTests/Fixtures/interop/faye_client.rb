#!/usr/bin/env ruby
# encoding: utf-8
# Herald interop client built on the Faye Ruby client (Debian ruby-faye 1.4).
#
# Speaks the line protocol described in README.md beside this file:
# stdout carries READY / RESULT <json> / UNSUBSCRIBED / AFTER <json> / DONE or
# ERROR <message>; stdin carries GO and GO2.  Everything else goes to stderr.
#
# usage: faye_client.rb --url http://127.0.0.1:PORT/bayeux --name a
#        --transport websocket|long-polling --prefix /interop/RUNID --peer b
#        [--count 20]

require 'json'
require 'optparse'
require 'set'
require 'multi_json'
# Debian's Ruby has Oj, which MultiJson prefers; Oj parses long decimals as
# BigDecimal. Use the json gem so any data corruption is the server's doing.
MultiJson.use(:json_gem)
require 'eventmachine'
require 'faye'

TEXT = "h\u00e9 \u2603 \"quoted\"" # hé ☃ "quoted"
BIG = 12_345_678_901_234_567           # 17 digits, not representable as a double
FLOAT = 0.1
OVERALL_TIMEOUT = 60.0
RECEIVE_TIMEOUT = 20.0
META_TIMEOUT = 15.0
AFTER_WAIT = 1.5

OUT_LOCK = Mutex.new
$phase = 'start'

def emit(line)
  OUT_LOCK.synchronize do
    $stdout.write(line + "\n")
    $stdout.flush
  end
end

def log(msg)
  $stderr.write("[faye_client] #{msg}\n")
  $stderr.flush
end

# Print ERROR <msg> and exit 1 at once (callable from any thread).
def fatal(msg)
  begin
    emit("ERROR #{msg.to_s.split.join(' ')} (phase: #{$phase})")
  ensure
    Kernel.exit!(1)
  end
end

def phase(name)
  $phase = name
  log("phase: #{name}")
end

def now
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

# Deep equality that also requires equal JSON types (1 != 1.0, true != 1).
def same?(a, b)
  return false unless a.class == b.class
  case a
  when Hash then a.keys.sort == b.keys.sort && a.all? { |k, v| same?(v, b[k]) }
  when Array then a.size == b.size && a.zip(b).all? { |x, y| same?(x, y) }
  else a == b
  end
end

def msg_data(sender, seq)
  { 'from' => sender, 'seq' => seq, 'text' => TEXT, 'big' => BIG, 'f' => FLOAT }
end

opts = { count: 20 }
begin
  OptionParser.new do |o|
    o.on('--url URL') { |v| opts[:url] = v }
    o.on('--name NAME') { |v| opts[:name] = v }
    o.on('--transport T', %w[websocket long-polling]) { |v| opts[:transport] = v }
    o.on('--prefix P') { |v| opts[:prefix] = v }
    o.on('--peer NAME') { |v| opts[:peer] = v }
    o.on('--count N', Integer) { |v| opts[:count] = v }
  end.parse!(ARGV)
  missing = %i[url name transport prefix peer].reject { |k| opts[k] }
  raise OptionParser::MissingArgument, missing.join(', ') unless missing.empty?
rescue OptionParser::ParseError => e
  fatal("bad command line: #{e.message}")
end

URL = opts[:url]
ME = opts[:name]
PEER = opts[:peer]
PREFIX = opts[:prefix]
N = opts[:count]
TRANSPORT = opts[:transport]

# Shared state between the EventMachine thread and the driver (main) thread.
class Recorder
  LISTENERS = %i[all exact one].freeze

  attr_accessor :counting_after
  attr_reader :received, :exact, :exact_peer, :top, :errors, :after, :meta,
              :deliveries, :delivery_fields, :listeners

  def initialize
    @lock = Mutex.new
    @cv = ConditionVariable.new
    @counting_after = false
    @received = {}
    @exact = []
    @exact_peer = []
    @top = []
    @seen = Hash.new(0)
    @errors = []
    @data_ok = true
    @deliveries = 0
    @delivery_fields = Set.new
    @after = []
    @meta = []
    @listeners = { all: [], exact: [], one: [] }
  end

  def data_ok
    @data_ok
  end

  def sync
    @lock.synchronize do
      r = yield
      @cv.broadcast
      r
    end
  end

  def wait_until(timeout)
    deadline = now + timeout
    @lock.synchronize do
      loop do
        return true if yield
        remaining = deadline - now
        return false if remaining <= 0
        @cv.wait(@lock, remaining)
      end
    end
  end

  def expected_keys
    keys = Set.new
    [ME, PEER].each { |s| N.times { |i| keys << "msgs/#{s}/#{i}" } }
    keys << "exact/#{PEER}" << "exactpeer/#{ME}" << "top/#{ME}" << "top/#{PEER}"
    keys
  end

  # Keys each local listener must have seen (Faye fans one delivery out to
  # every matching local subscription).
  def listener_expected
    {
      all: expected_keys,
      exact: Set["exact/#{PEER}"],
      one: Set["top/#{ME}", "top/#{PEER}"]
    }
  end

  def missing
    (expected_keys - @seen.keys).to_a.sort +
      listener_expected.flat_map do |l, keys|
        (keys - @listeners[l].map { |e| e[:key] }).map { |k| "#{l}-listener:#{k}" }.sort
      end
  end

  # Classify a delivery; returns [key, expected data] or [nil, nil].
  def classify(ch, data)
    from = data.is_a?(Hash) ? data['from'] : nil
    if ch.start_with?("#{PREFIX}/msgs/")
      sender = ch["#{PREFIX}/msgs/".size..-1]
      return [nil, nil] unless [ME, PEER].include?(sender)
      seq = data.is_a?(Hash) ? data['seq'] : nil
      exp = seq.is_a?(Integer) && seq >= 0 && seq < N ? msg_data(sender, seq) : nil
      ["msgs/#{sender}/#{seq}", exp, sender, seq]
    elsif ch == "#{PREFIX}/exact/#{ME}"
      ["exact/#{from}", { 'from' => PEER, 'exact' => true }]
    elsif ch == "#{PREFIX}/exact/#{PEER}"
      ["exactpeer/#{from}", { 'from' => ME, 'exact' => true }]
    elsif ch == "#{PREFIX}/top"
      ["top/#{from}", [ME, PEER].include?(from) ? { 'from' => from, 'top' => true } : nil]
    else
      [nil, nil]
    end
  end

  # Called (EM thread) for every message the server sends, via the extension.
  def on_wire(message)
    ch = message['channel'].to_s
    if ch.start_with?('/meta/')
      sync { @meta << message }
      return
    end
    return if message.key?('successful') # publish acknowledgement
    sync { record_delivery(ch, message) }
  end

  def record_delivery(ch, message)
    @delivery_fields.merge(message.keys)
    if @counting_after
      @after << ch
      log("delivery AFTER unsubscribe: #{message.inspect}")
      return
    end
    @deliveries += 1
    data = message['data']
    from = data.is_a?(Hash) ? data['from'] : nil
    key, exp, sender, seq = classify(ch, data)
    if key.nil?
      @errors << "delivery on unexpected channel #{ch}: #{data.inspect}"
      return
    end
    case key
    when /\Amsgs\// then (@received[sender] ||= []) << seq
    when /\Aexact\// then @exact << from
    when /\Aexactpeer\// then @exact_peer << from
    when /\Atop\// then @top << from
    end
    @seen[key] += 1
    @errors << "duplicate delivery #{key} on #{ch}" if @seen[key] == 2
    return if exp && same?(exp, data)
    @data_ok = false
    @errors << "data mismatch on #{ch}: got #{data.inspect} expected #{exp.inspect}"
  end

  # Called (EM thread) by the Faye subscription callbacks.
  def on_listener(listener, ch, data)
    sync do
      next if @counting_after
      key, = classify(ch.to_s, data)
      @listeners[listener] << { ch: ch, key: key }
    end
  end

  def listener_errors
    errs = []
    want = listener_expected
    @listeners.each do |l, entries|
      keys = entries.map { |e| e[:key] }
      extra = keys.reject { |k| want[l].include?(k) }
      errs << "#{l} listener got unexpected #{extra.inspect}" unless extra.empty?
      dups = keys.group_by(&:itself).select { |_, v| v.size > 1 }.keys
      errs << "#{l} listener got duplicates #{dups.inspect}" unless dups.empty?
    end
    errs
  end

  def find_meta(channel, subscription = :any)
    @meta.find do |m|
      m['channel'] == channel && (subscription == :any || m['subscription'] == subscription)
    end
  end
end

REC = Recorder.new

# Faye extension: sees every message the server sends, before the client
# library dispatches it.
class WireTap
  def incoming(message, callback)
    REC.on_wire(message)
    callback.call(message)
  end
end

# With HERALD_TOKEN set, the handshake carries it in ext.auth.token.
# Over long-polling nothing else does: later requests show they are this client's
# by the BAYEUX_BROWSER cookie Faye's cookie jar keeps from the handshake reply.
# Over WebSocket every message carries it: Faye opens its WebSocket (to test that
# it works) before the handshake reply has set the cookie, so that socket may
# carry no cookie, or another one (docs/security.md).
class TokenAuth
  def outgoing(message, callback)
    token = ENV['HERALD_TOKEN']
    if token && (message['channel'] == '/meta/handshake' || TRANSPORT == 'websocket')
      message['ext'] ||= {}
      message['ext']['auth'] = { 'token' => token }
    end
    callback.call(message)
  end
end

def wait_meta(channel, subscription = :any)
  what = subscription == :any ? channel : "#{channel} #{subscription}"
  ok = REC.wait_until(META_TIMEOUT) { REC.find_meta(channel, subscription) }
  unless ok
    fatal("no #{what} reply (echoing the subscription) within #{META_TIMEOUT}s; " \
          "meta replies seen: #{REC.sync { REC.meta.last(6) }.inspect}")
  end
  reply = REC.sync { REC.find_meta(channel, subscription) }
  fatal("#{what} reply not successful: #{reply.inspect}") unless reply['successful'] == true
  reply
end

# Run the block in the reactor; it returns a Faye deferrable. Wait for it.
def await_deferrable(what, timeout = META_TIMEOUT)
  box = []
  EM.schedule do
    d = yield
    if d.nil?
      REC.sync { box << [:err, 'library returned no deferrable'] }
    else
      d.callback { |*_| REC.sync { box << [:ok] } }
      d.errback { |e| REC.sync { box << [:err, e] } }
    end
  end
  fatal("timeout after #{timeout}s waiting for #{what}") unless REC.wait_until(timeout) { !box.empty? }
  res = box.first
  return if res[0] == :ok
  err = res[1]
  detail = err.respond_to?(:code) ? "#{err.code}:#{err.params.inspect}:#{err.message}" : err.inspect
  fatal("#{what} failed: #{detail}")
end

def expect_line(word)
  line = $stdin.gets
  fatal("stdin closed while waiting for #{word}") if line.nil?
  fatal("expected #{word} on stdin, got #{line.strip.inspect}") unless line.strip == word
end

def current_transport(client)
  dispatcher = client.instance_variable_get(:@dispatcher)
  dispatcher.connection_type
rescue StandardError => e
  "unknown (#{e.class})"
end

Thread.new do
  sleep OVERALL_TIMEOUT
  fatal("overall timeout of #{OVERALL_TIMEOUT}s")
end

Thread.abort_on_exception = true
Thread.new do
  EM.error_handler { |e| fatal("EventMachine error: #{e.class}: #{e.message}") }
  EM.run
end
sleep 0.01 until EM.reactor_running?

begin
  client = nil
  subs = {}
  patterns = { all: "#{PREFIX}/**", exact: "#{PREFIX}/exact/#{ME}", one: "#{PREFIX}/*" }

  phase('subscribe (handshake + connect + subscribe)')
  boxes = {}
  EM.schedule do
    client = Faye::Client.new(URL)
    client.disable('websocket') if TRANSPORT == 'long-polling'
    client.add_extension(WireTap.new)
    client.add_extension(TokenAuth.new)
    patterns.each do |listener, pattern|
      sub = client.subscribe(pattern)
      sub.with_channel { |ch, data| REC.on_listener(listener, ch, data) }
      boxes[pattern] = box = []
      sub.callback { |*_| REC.sync { box << [:ok] } }
      sub.errback { |e| REC.sync { box << [:err, e] } }
      subs[listener] = sub
    end
  end
  sleep 0.01 until REC.sync { boxes.size == patterns.size }
  patterns.each_value do |pattern|
    box = boxes[pattern]
    fatal("timeout waiting for subscribe #{pattern}") unless REC.wait_until(META_TIMEOUT) { !box.empty? }
    fatal("subscribe #{pattern} failed: #{box.first[1].inspect}") unless box.first[0] == :ok
    wait_meta('/meta/subscribe', pattern)
  end
  wait_meta('/meta/handshake')
  # Faye handshakes over long-polling and moves to WebSocket once its socket has opened, which
  # it checks asynchronously: on a loaded machine that can come after the subscribes. Give it
  # the meta timeout to get there; a client still on the wrong transport then is an error.
  switch_deadline = Time.now + META_TIMEOUT
  sleep 0.01 until current_transport(client) == TRANSPORT || Time.now > switch_deadline
  transport_at_ready = current_transport(client)
  emit('READY')

  phase('wait GO')
  expect_line('GO')

  phase('publish')
  mine = "#{PREFIX}/msgs/#{ME}"
  N.times do |i|
    await_deferrable("publish seq #{i} to #{mine}") { client.publish(mine, msg_data(ME, i)) }
  end
  ch = "#{PREFIX}/exact/#{PEER}"
  await_deferrable("publish exact to #{ch}") { client.publish(ch, 'from' => ME, 'exact' => true) }
  ch = "#{PREFIX}/top"
  await_deferrable("publish top to #{ch}") { client.publish(ch, 'from' => ME, 'top' => true) }

  phase('receive')
  unless REC.wait_until(RECEIVE_TIMEOUT) { REC.missing.empty? }
    miss = REC.sync { REC.missing }
    REC.sync do
      REC.errors << "timed out after #{RECEIVE_TIMEOUT}s; #{miss.size} expected deliveries " \
                    "missing: #{miss.first(12).join(' ')}"
    end
  end
  result = REC.sync do
    errors = REC.errors.dup + REC.listener_errors
    [ME, PEER].each do |s|
      got = REC.received[s] || []
      next if got == (0...N).to_a
      errors << "messages from #{s} not exactly seq 0..#{N - 1} in order: #{got.inspect}"
    end
    errors << "exact channel: expected [#{PEER}], got #{REC.exact.inspect}" unless REC.exact == [PEER]
    unless REC.exact_peer == [ME]
      errors << "PREFIX/exact/#{PEER} via PREFIX/**: expected [#{ME}], got #{REC.exact_peer.inspect}"
    end
    unless REC.top.size == 2 && REC.top.map(&:to_s).sort == [ME, PEER].sort
      errors << "top: expected one each from #{ME} and #{PEER}, got #{REC.top.inspect}"
    end
    transport_now = current_transport(client)
    [transport_at_ready, transport_now].uniq.each do |t|
      errors << "client used transport #{t}, wanted #{TRANSPORT}" unless t == TRANSPORT
    end
    listener_summary = REC.listeners.map do |l, entries|
      [patterns[l], entries.size]
    end.to_h
    {
      'name' => ME,
      'client' => 'faye-ruby',
      'transport' => transport_now,
      'received' => REC.received,
      'exact' => REC.exact,
      'exact_peer_channel' => REC.exact_peer,
      'top' => REC.top.uniq,
      'wire' => { 'deliveries' => REC.deliveries, 'top_deliveries' => REC.top.size,
                  'delivery_fields' => REC.delivery_fields.to_a.sort },
      'listeners' => listener_summary,
      'data_ok' => REC.data_ok,
      'errors' => errors
    }
  end
  emit("RESULT #{JSON.generate(result, ascii_only: true)}")

  phase('unsubscribe')
  REC.sync { REC.counting_after = true } # nothing may arrive from here on
  EM.schedule { subs.each_value(&:cancel) }
  patterns.each_value { |pattern| wait_meta('/meta/unsubscribe', pattern) }
  emit('UNSUBSCRIBED')

  phase('wait GO2')
  expect_line('GO2')
  phase('publish after unsubscribe')
  await_deferrable("publish after to #{mine}") { client.publish(mine, 'from' => ME, 'after' => true) }
  sleep AFTER_WAIT
  after = REC.sync { REC.after.dup }
  emit("AFTER #{JSON.generate({ 'received_after_unsubscribe' => after.size, 'channels' => after },
                              ascii_only: true)}")

  phase('disconnect')
  await_deferrable('disconnect') { client.disconnect }
  wait_meta('/meta/disconnect')
  emit('DONE')
  $stderr.flush
  Kernel.exit!(0)
rescue StandardError => e
  fatal("#{e.class}: #{e.message} at #{e.backtrace&.first}")
end
