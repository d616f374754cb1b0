#!/usr/bin/env ruby
# encoding: utf-8
# Retained-value check with the Faye Ruby client (Debian ruby-faye 1.4).
#
# usage: retained_faye.rb URL CHANNEL TRANSPORT      (TRANSPORT: websocket | long-polling)
#
# Subscribes to CHANNEL and prints the first message the subscription receives as
#   FIRST {"channel":…,"data":…,"ext":…,"transport":…}
# then publishes {"live":true,"client":"faye-ruby"} to CHANNEL, prints the next message as
#   NEXT {…}
# disconnects and exits 0. Any failure prints ERROR <message> and exits 1; the whole run
# is capped at 20 s. "ext" is the delivery's ext as it came over the wire (seen by an
# extension); "transport" is the connection type Faye used. Logging goes to stderr.

require 'json'
require 'multi_json'
# Debian's Ruby has Oj, which MultiJson prefers; use the json gem (see faye_client.rb).
MultiJson.use(:json_gem)
require 'eventmachine'
require 'faye'

OVERALL_TIMEOUT = 20.0
LIVE_DATA = { 'live' => true, 'client' => 'faye-ruby' }.freeze

def emit(line)
  $stdout.write(line + "\n")
  $stdout.flush
end

def fatal(message)
  emit("ERROR #{message.to_s.split.join(' ')}")
  Kernel.exit!(1)
end

URL, CHANNEL, TRANSPORT = ARGV
unless ARGV.size == 3 && %w[websocket long-polling].include?(TRANSPORT)
  fatal('usage: retained_faye.rb URL CHANNEL websocket|long-polling')
end

# Remembers the ext of the last delivery seen on the wire. Faye runs incoming extensions and
# then hands the message to the subscriptions in the same reactor turn, so a listener reads
# the ext of its own delivery.
class WireTap
  attr_reader :last_ext

  def incoming(message, callback)
    channel = message['channel'].to_s
    @last_ext = message['ext'] if !channel.start_with?('/meta/') && message.key?('data')
    callback.call(message)
  end
end

Thread.abort_on_exception = true
Thread.new do
  sleep OVERALL_TIMEOUT
  fatal("overall timeout of #{OVERALL_TIMEOUT}s")
end
Thread.new do
  EM.error_handler { |e| fatal("EventMachine error: #{e.class}: #{e.message}") }
  EM.run
end
sleep 0.01 until EM.reactor_running?

events = Queue.new # [:message, hash] | [:subscribed] | [:published] | [:disconnected] | [:error, text]
client = nil
tap = WireTap.new

def transport_of(client)
  client.instance_variable_get(:@dispatcher).connection_type
rescue StandardError => e
  "unknown (#{e.class})"
end

begin
  pending_messages = []
  EM.schedule do
    client = Faye::Client.new(URL)
    client.disable('websocket') if TRANSPORT == 'long-polling'
    client.add_extension(tap)
    subscription = client.subscribe(CHANNEL)
    subscription.with_channel do |channel, data|
      events << [:message, { 'channel' => channel, 'data' => data, 'ext' => tap.last_ext,
                             'transport' => transport_of(client) }]
    end
    subscription.callback { events << [:subscribed] }
    subscription.errback { |e| events << [:error, "subscribe failed: #{e.inspect}"] }
  end

  # The retained message may come before or after the subscribe callback runs.
  subscribed = false
  until subscribed && !pending_messages.empty?
    event = events.pop
    case event[0]
    when :error then fatal(event[1])
    when :subscribed then subscribed = true
    when :message then pending_messages << event[1]
    end
  end
  emit("FIRST #{JSON.generate(pending_messages.shift, ascii_only: true)}")

  EM.schedule do
    publication = client.publish(CHANNEL, LIVE_DATA)
    publication.callback { events << [:published] }
    publication.errback { |e| events << [:error, "publish failed: #{e.inspect}"] }
  end
  published = false
  until published && !pending_messages.empty?
    event = events.pop
    case event[0]
    when :error then fatal(event[1])
    when :published then published = true
    when :message then pending_messages << event[1]
    end
  end
  emit("NEXT #{JSON.generate(pending_messages.shift, ascii_only: true)}")

  EM.schedule do
    disconnection = client.disconnect
    if disconnection.respond_to?(:callback)
      disconnection.callback { events << [:disconnected] }
      disconnection.errback { |e| events << [:error, "disconnect failed: #{e.inspect}"] }
    else
      events << [:disconnected]
    end
  end
  loop do
    event = events.pop
    fatal(event[1]) if event[0] == :error
    break if event[0] == :disconnected
    fatal("unexpected message after NEXT: #{event[1].inspect}") if event[0] == :message
  end
  $stderr.flush
  Kernel.exit!(0)
rescue StandardError => e
  fatal("#{e.class}: #{e.message} at #{e.backtrace&.first}")
end
