#!/usr/bin/env ruby
# Faye's Ruby client (Debian ruby-faye 1.4) beside herald-client-bench, for compare.sh: one
# figure per run, printed as one line
#
#   RESULT client=faye-ruby mode=<mode> rate=<n/s> count=<n> seconds=<s> peak_rss_kib=<KiB> transport=<t>
#
# usage: faye_bench.rb --url http://127.0.0.1:PORT/bayeux --mode subscribe|publish
#                      [--seconds 5] [--warmup 1] [--channel /bench/feed] [--window 256]
#
# The client runs under EventMachine and handshakes over HTTP, then moves to WebSocket (the
# result line says which transport it was on at the end, so a run that did not get onto
# websocket shows).
# subscribe: counts the messages its subscription block receives during --seconds after
#            --warmup (Faye parses every message into a Hash; its default JSON backend).
# publish:   keeps --window client.publish() calls outstanding; each publication's callback
#            (the server's acknowledgement) counts one and starts the next publish on the next
#            tick (started from inside the callback, Faye 1.4 sometimes raised in
#            EM::Deferrable#set_deferred_status, `undefined method pop for nil`).
require 'optparse'
require 'eventmachine'
require 'faye'

opts = { seconds: 5.0, warmup: 1.0, channel: '/bench/feed', window: 256 }
OptionParser.new do |o|
  o.on('--url URL') { |v| opts[:url] = v }
  o.on('--mode MODE', %w[subscribe publish]) { |v| opts[:mode] = v }
  o.on('--seconds S', Float) { |v| opts[:seconds] = v }
  o.on('--warmup S', Float) { |v| opts[:warmup] = v }
  o.on('--channel C') { |v| opts[:channel] = v }
  o.on('--window W', Integer) { |v| opts[:window] = v }
end.parse!(ARGV)
abort('usage: faye_bench.rb --url URL --mode subscribe|publish [...]') unless opts[:url] && opts[:mode]

def peak_rss_kib
  File.read('/proc/self/status')[/^VmHWM:\s+(\d+)/, 1].to_i
rescue StandardError
  0
end

def transport(client)
  client.instance_variable_get(:@dispatcher).connection_type
rescue StandardError
  'unknown'
end

$count = 0
$failure = nil
DATA = { 's' => 'AAPL', 'px' => 189.25, 'n' => 1 }.freeze

EM.run do
  client = Faye::Client.new(opts[:url])
  if opts[:mode] == 'subscribe'
    subscription = client.subscribe(opts[:channel]) { |_message| $count += 1 }
    subscription.errback { |error| $failure = "subscribe_failed:#{error.message.to_s.tr(' ', '_')}" }
  else
    publish = lambda do
      client.publish(opts[:channel], DATA)
            .callback { $count += 1; EM.next_tick(&publish) }
            .errback { |error| $failure ||= "publish_failed:#{error.message.to_s.tr(' ', '_')}" }
    end
    # One publish first (it waits for the handshake and the move to WebSocket), then the window.
    client.publish(opts[:channel], DATA).callback do
      $count += 1
      opts[:window].times { publish.call }
    end
  end

  first = nil
  start = nil
  EM.add_timer(opts[:warmup]) do
    first = $count
    start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
  EM.add_timer(opts[:warmup] + opts[:seconds]) do
    elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - start
    counted = $count - first
    line = format('RESULT client=faye-ruby mode=%s rate=%d count=%d seconds=%.2f peak_rss_kib=%d transport=%s',
                  opts[:mode], counted / elapsed, counted, elapsed, peak_rss_kib, transport(client))
    line += " window=#{opts[:window]}" if opts[:mode] == 'publish'
    line += " error=#{$failure}" if $failure
    $stdout.puts(line)
    $stdout.flush
    # Do not wait for a graceful disconnect behind a backlog.
    Kernel.exit!(0)
  end
end
