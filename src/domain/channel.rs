//! The channel a verification is asked for through the Twilio Verify
//! compatible surface. Every code goes over WhatsApp; the channel asked for
//! is kept (`verifications.channel`) only so that the answers repeat it.

use crate::text_enum;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    WhatsApp,
    /// Sent over WhatsApp, for a client with `sms_as_whatsapp`.
    Sms,
}

text_enum!(Channel {
    WhatsApp = "whatsapp",
    Sms = "sms",
});

/// Why a channel was refused: its answer names the way out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelRefusal {
    /// `sms` for a client without `sms_as_whatsapp`.
    SmsOff,
    /// A channel this service has no way to send by (`call`, `email`, `sna`,
    /// `auto`…), as given.
    Unsupported(String),
}

impl Channel {
    /// The channel of a request that asked for `asked` (in any case), for a
    /// client whose `sms_as_whatsapp` is `sms_as_whatsapp`.
    pub fn decide(asked: &str, sms_as_whatsapp: bool) -> Result<Self, ChannelRefusal> {
        match asked.to_ascii_lowercase().as_str() {
            "whatsapp" => Ok(Self::WhatsApp),
            "sms" if sms_as_whatsapp => Ok(Self::Sms),
            "sms" => Err(ChannelRefusal::SmsOff),
            _ => Err(ChannelRefusal::Unsupported(asked.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatsapp_always_sms_only_when_the_client_says_so_nothing_else() {
        use ChannelRefusal as R;
        let table = [
            ("whatsapp", false, Ok(Channel::WhatsApp)),
            ("WhatsApp", true, Ok(Channel::WhatsApp)),
            ("sms", true, Ok(Channel::Sms)),
            ("SMS", true, Ok(Channel::Sms)),
            ("sms", false, Err(R::SmsOff)),
            ("call", true, Err(R::Unsupported("call".into()))),
            ("email", true, Err(R::Unsupported("email".into()))),
            ("sna", false, Err(R::Unsupported("sna".into()))),
            ("auto", true, Err(R::Unsupported("auto".into()))),
            ("", true, Err(R::Unsupported(String::new()))),
        ];
        for (asked, sms_as_whatsapp, expected) in table {
            assert_eq!(
                Channel::decide(asked, sms_as_whatsapp),
                expected,
                "{asked} {sms_as_whatsapp}"
            );
        }
    }

    #[test]
    fn each_channel_is_stored_as_the_migration_allows() {
        for channel in Channel::ALL {
            assert!(["whatsapp", "sms"].contains(&channel.as_str()));
            assert_eq!(channel.as_str().parse::<Channel>(), Ok(*channel));
        }
    }
}
