#!/usr/bin/env ruby
# encoding: utf-8
# A Faye Ruby client (Debian ruby-faye) that an operator kicks through the admin API.
#
# usage: kicked_faye.rb URL websocket|long-polling CHANNEL
#
# stdout, one JSON object per line: {"ready": clientId, "transport": T} once subscribed on the
# wanted transport, every incoming /meta reply as {"meta": channel, "successful", "error",
# "advice", "clientId"}, and {"event": "transport:down"} or {"event": "transport:up"}.
# It runs until stdin closes (or 60 s).

require 'json'
require 'multi_json'
MultiJson.use(:json_gem)
require 'eventmachine'
require 'faye'

url, transport, channel = ARGV
abort('usage: kicked_faye.rb URL websocket|long-polling CHANNEL') unless url && channel && %w[websocket long-polling].include?(transport)
$stdout.sync = true
OUT = Mutex.new
def emit(object)
  OUT.synchronize { $stdout.write(JSON.generate(object) + "\n") }
end

class MetaTap
  def incoming(message, callback)
    if message['channel'].to_s.start_with?('/meta/')
      emit('meta' => message['channel'], 'successful' => message['successful'], 'error' => message['error'],
           'advice' => message['advice'], 'clientId' => message['clientId'])
    end
    callback.call(message)
  end
end

Thread.abort_on_exception = true
Thread.new { EM.run }
sleep 0.01 until EM.reactor_running?

client = nil
subscribed = false
EM.schedule do
  client = Faye::Client.new(url)
  client.disable('websocket') if transport == 'long-polling'
  client.add_extension(MetaTap.new)
  client.on('transport:down') { emit('event' => 'transport:down') }
  client.on('transport:up') { emit('event' => 'transport:up') }
  subscription = client.subscribe(channel) { |_| }
  subscription.callback { subscribed = true }
  subscription.errback { |e| emit('error' => e.inspect) }
end

dispatcher = -> { client && client.instance_variable_get(:@dispatcher) }
deadline = Time.now + 20
sleep 0.01 until (subscribed && dispatcher.call&.connection_type == transport) || Time.now > deadline
abort("not subscribed on #{transport} within 20 s") unless subscribed && dispatcher.call.connection_type == transport
emit('ready' => dispatcher.call.client_id, 'transport' => transport)

Thread.new { sleep 60; exit!(1) }
$stdin.read
