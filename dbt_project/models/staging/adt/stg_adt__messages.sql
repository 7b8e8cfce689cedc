-- Rename and cast only. Names, birth dates and the raw text stay in raw.
with source as (
    select * from {{ source('adt', 'adt_messages') }}
)
select
    sending_facility                              as facility_code,
    sending_facility || '|' || visit_number       as encounter_key,
    visit_number,
    control_id,
    trigger_event,
    hl7_version,
    patient_class,
    nullif(patient_type, '')                      as patient_type,
    unit                                          as unit_code,
    room,
    bed,
    prior_unit                                    as prior_unit_code,
    event_ts,
    discharge_ts,
    admit_ts,
    received_date,
    file_path,
    message_index,
    batch_id
from source
